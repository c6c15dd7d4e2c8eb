"""The BIDS checks of scripts/e2e-bids.sh, run in the venv: pybids indexes the mounted `.bids`
view (validation on) and answers queries and sidecar metadata as the study's scans say;
nibabel reads a volume through `.bids` equal to the same file through its archive path.

    python e2e_bids.py pybids|nibabel MOUNT
"""

import sys
from pathlib import Path


def check_pybids(mount: Path) -> None:
    from bids import BIDSLayout

    layout = BIDSLayout(str(mount / "STUDY" / ".bids"), validate=True)
    subjects = sorted(layout.get_subjects())
    assert subjects == ["S01", "S02"], subjects
    bold = layout.get(subject="S01", suffix="bold", extension=".nii.gz")
    names = sorted(Path(f.path).name for f in bold)
    assert names == [
        "sub-S01_task-rest_run-1_bold.nii.gz",
        "sub-S01_task-rest_run-2_bold.nii.gz",
    ], names
    meta = layout.get_metadata(bold[0].path)
    assert meta["RepetitionTime"] == 2.0 and meta["TaskName"] == "rest", meta
    assert layout.get_tasks() == ["rest"], layout.get_tasks()
    dwi = layout.get(subject="S02", datatype="dwi", suffix="dwi", extension=".nii.gz")
    assert len(dwi) == 1, dwi
    bval = layout.get_bval(dwi[0].path)
    assert Path(bval).read_text().split() == ["0", "1000", "1000", "1000"], bval
    fmap = layout.get(suffix="epi", direction="PA", extension=".nii.gz")
    assert len(fmap) == 2, fmap
    assert layout.get_metadata(fmap[0].path)["PhaseEncodingDirection"] == "j"
    t1 = layout.get(suffix="T1w", extension=".nii.gz")
    print(f"    pybids {__import__('bids').__version__}: {len(layout.get())} files, "
          f"subjects {subjects}, {len(bold)} rest runs of S01, {len(t1)} T1w")


def check_nibabel(mount: Path) -> None:
    import nibabel
    import numpy

    bids = mount / "STUDY" / ".bids" / "sub-S02" / "func" / "sub-S02_task-rest_run-2_bold.nii.gz"
    archive = next((mount / "STUDY" / "S-02" / "S-02_MR1").glob("4-*/NIFTI/*.nii.gz"))
    a, b = nibabel.load(str(bids)), nibabel.load(str(archive))
    assert a.shape == b.shape == (16, 16, 8, 6), (a.shape, b.shape)
    assert numpy.array_equal(a.get_fdata(), b.get_fdata())
    assert a.header.get_zooms()[3] == 2.0, a.header.get_zooms()
    print(f"    {bids.name} = {archive.relative_to(mount)}: {a.shape}, equal")


if __name__ == "__main__":
    {"pybids": check_pybids, "nibabel": check_nibabel}[sys.argv[1]](Path(sys.argv[2]))
