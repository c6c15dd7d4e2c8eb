"""Python side of scripts/e2e-write.sh: test data, and what the server holds, as XNAT's clients see it.

Run with the venv of scripts/test.sh: `python scripts/lib/e2e_write.py COMMAND ARGS…`. Commands
that talk to the server take its URL first and the credentials from XNAT_USER and XNAT_PASS.
Each prints what it found and exits non-zero with a one-line reason when a check fails.

  downsample SRC DST FACTOR [SHIFT_MM]   block-mean downsample of a 3D image (a real head at FACTOR
                                         mm), its origin moved SHIFT_MM along z (one per subject)
  files URL RESOURCE_PATH                a resource's REST file listing: "path size md5", sorted,
                                         path relative to the resource (from the URI column)
  object URL PATH                        a REST object (?format=json): "xsiType=…" and its fields
  labels URL PATH                        the label column of a REST listing (e.g. …/resources)
  pyxnat-files URL P S E SCAN RES        the file names pyxnat lists in a scan resource
  pyxnat-get URL P S E SCAN RES FILE DEST  download one file with pyxnat
  same-image A B                         voxel data (array_equal), shape and affine of A equal B's
  save-images SRC DIR…                   nibabel.save a float32 image made from SRC as
                                         DIR/saved.nii.gz and DIR/saved.nii (straight into DIR)
  check-mask GOT REF INPUT               GOT is REF's binary mask (voxels equal) with INPUT's affine
"""

import os
import sys

import numpy as np
import nibabel as nib


def die(message):
    sys.exit(message)


def session():
    import requests

    s = requests.Session()
    s.auth = (os.environ["XNAT_USER"], os.environ["XNAT_PASS"])
    return s


def get_json(url, path):
    r = session().get(url + path, params={"format": "json"}, timeout=60)
    if r.status_code != 200:
        die(f"GET {path}?format=json answered {r.status_code}: {r.text[:200]}")
    return r.json()


def downsample(src, dst, factor, shift_mm="0"):
    factor, shift = int(factor), float(shift_mm)
    img = nib.load(src)
    data = np.asanyarray(img.dataobj).astype(np.float64)
    shape = [n - n % factor for n in data.shape[:3]]
    data = data[: shape[0], : shape[1], : shape[2]]
    blocks = data.reshape(shape[0] // factor, factor, shape[1] // factor, factor, shape[2] // factor, factor)
    small = np.rint(blocks.mean(axis=(1, 3, 5))).astype(img.get_data_dtype())
    affine = img.affine.copy()
    # The centre of block (0,0,0) is at voxel ((factor-1)/2, …) of the source.
    affine[:3, 3] = img.affine[:3, :3] @ np.full(3, (factor - 1) / 2) + img.affine[:3, 3]
    affine[:3, :3] = img.affine[:3, :3] * factor
    affine[2, 3] += shift
    out = nib.Nifti1Image(small, affine, img.header)
    out.set_data_dtype(img.get_data_dtype())
    nib.save(out, dst)
    print(f"    {os.path.basename(dst)}: {small.shape} {small.dtype}, {factor} mm, origin z {affine[2, 3]:+.1f}")


def files(url, resource_path):
    rows = get_json(url, resource_path + "/files")["ResultSet"]["Result"]
    out = []
    for row in rows:
        uri = row["URI"]
        if "/files/" not in uri:
            die(f"a file row's URI has no /files/: {uri}")
        out.append(f"{uri.split('/files/', 1)[1]} {row['Size']} {row['digest']}")
    print("\n".join(sorted(out)))


def object_fields(url, path):
    item = get_json(url, path)["items"][0]
    print(f"xsiType={item['meta']['xsi:type']}")
    for key, value in sorted(item["data_fields"].items()):
        print(f"{key}={value}")


def labels(url, path):
    rows = get_json(url, path)["ResultSet"]["Result"]
    print("\n".join(sorted(row["label"] for row in rows)))


def pyxnat_resource(url, p, s, e, scan, res):
    import pyxnat

    x = pyxnat.Interface(server=url, user=os.environ["XNAT_USER"], password=os.environ["XNAT_PASS"])
    return x, x.select.project(p).subject(s).experiment(e).scan(scan).resource(res)


def pyxnat_files(url, p, s, e, scan, res):
    x, resource = pyxnat_resource(url, p, s, e, scan, res)
    try:
        if not resource.exists():
            die(f"pyxnat: resource {p}/{s}/{e}/scans/{scan}/{res} does not exist")
        print("\n".join(sorted(resource.files().get())))
    finally:
        x.disconnect()


def pyxnat_get(url, p, s, e, scan, res, name, dest):
    x, resource = pyxnat_resource(url, p, s, e, scan, res)
    try:
        f = resource.file(name)
        if not f.exists():
            die(f"pyxnat: {p}/{s}/{e}/scans/{scan}/{res}/{name} does not exist")
        f.get(dest)
    finally:
        x.disconnect()
    if not os.path.isfile(dest):
        die(f"pyxnat: no file at {dest} after get()")


def same_image(a, b):
    ia, ib = nib.load(a), nib.load(b)
    da, db = np.asanyarray(ia.dataobj), np.asanyarray(ib.dataobj)
    if da.shape != db.shape:
        die(f"{a}: shape {da.shape}, expected {db.shape}")
    if not np.array_equal(da, db):
        die(f"{a}: voxel data differ from {b}")
    if not np.allclose(ia.affine, ib.affine):
        die(f"{a}: affine differs from {b}")
    print(f"    {a}: {da.shape} {da.dtype}, equal")


def save_images(src, *dirs):
    img = nib.load(src)
    data = np.asanyarray(img.dataobj).astype(np.float32) / 2 + 0.25
    out = nib.Nifti1Image(data, img.affine)
    for d in dirs:
        for name in ("saved.nii.gz", "saved.nii"):
            nib.save(out, os.path.join(d, name))
    print(f"    saved.nii.gz, saved.nii: {data.shape} float32 in {len(dirs)} folder(s)")


def check_mask(got, ref, inp):
    g, r, i = nib.load(got), nib.load(ref), nib.load(inp)
    dg, dr = np.asanyarray(g.dataobj), np.asanyarray(r.dataobj)
    if dg.shape != i.shape[:3]:
        die(f"{got}: shape {dg.shape}, the input's is {i.shape}")
    values = np.unique(dg)
    if not set(values.tolist()) <= {0.0, 1.0}:
        die(f"{got}: not a binary mask (values {values[:10]})")
    if not np.allclose(g.affine, i.affine):
        die(f"{got}: its affine is not its own input's (a mask of another subject?)")
    if dg.shape != dr.shape or not np.array_equal(dg, dr):
        a, b = dg > 0, dr > 0
        dice = 2 * (a & b).sum() / max(1, a.sum() + b.sum()) if a.shape == b.shape else float("nan")
        die(f"{got}: voxels differ from the local run {ref} (Dice {dice:.4f})")
    print(f"    {got}: {dg.shape} binary mask, {int(dg.sum())} brain voxels, equal to the local run")


COMMANDS = {
    "downsample": downsample,
    "files": files,
    "object": object_fields,
    "labels": labels,
    "pyxnat-files": pyxnat_files,
    "pyxnat-get": pyxnat_get,
    "same-image": same_image,
    "save-images": save_images,
    "check-mask": check_mask,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        die(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
