"""Where `config.data` says the images are: the one place that resolves data sources,
training folders, test splits and the folders of true translations.

Sources (exactly one): `root` (a folder with trainA/ trainB/ [testA/ testB/ truthAtoB/
truthBtoA/]), `a` + `b` (two image folders), or `tfds` (a TFDS name with trainA / trainB /
testA / testB splits). Test splits: `test_a` / `test_b` when set, else root/testA / testB,
else the TFDS splits. True translations: `truth_a2b` / `truth_b2a`, else root/truthAtoB /
truthBtoA when present.

Aligned data (`aligned`, with `root` only): each file of root/train/ [root/test/] holds a
pair side by side, A the left half and B the right (width = 2 x height). The test split of
both domains is then root/test/ (A: the left halves, B: the right ones, same names), and the
true translations of AtoB are the right halves, of BtoA the left ones (`truth_a2b` /
`truth_b2a` / `test_a` / `test_b`, when set, are folders of whole images as always).
"""

import pathlib

DOMAINS = ("a", "b")
TRAIN_SPLIT = {"a": "trainA", "b": "trainB"}
TEST_SPLIT = {"a": "testA", "b": "testB"}
#: direction -> (source domain, target domain, truth config field, truth folder under root).
SIDES = {"AtoB": ("a", "b", "truth_a2b", "truthAtoB"), "BtoA": ("b", "a", "truth_b2a", "truthBtoA")}
#: Aligned data: the folders under root, and which half of a file is each domain's image.
ALIGNED_SPLIT = {"train": "train", "test": "test"}
HALF = {"a": 0, "b": 1}


def field(data_cfg, name: str, default=None):
    """`data_cfg.name`, or `default` when it is missing or None."""
    value = data_cfg.get(name, default)
    return default if value is None else value


def source(data_cfg) -> str:
    """Which source the config names: "root", "folders" or "tfds"; checks there is one."""
    root, a, b = field(data_cfg, "root", ""), field(data_cfg, "a", ""), field(data_cfg, "b", "")
    name = field(data_cfg, "tfds", "")
    given = [
        f"config.data.{key}={value!r}"
        for key, value in (("root", root), ("a", a), ("b", b), ("tfds", name))
        if value
    ]
    if bool(a) != bool(b):
        raise ValueError(
            "config.data.a and config.data.b must be set together (got " + ", ".join(given) + ")"
        )
    chosen = [kind for kind, on in (("root", root), ("folders", a), ("tfds", name)) if on]
    if len(chosen) != 1:
        raise ValueError(
            "Set exactly one data source: config.data.root (a folder with trainA/ trainB/), "
            "or config.data.a and config.data.b (two image folders), "
            "or config.data.tfds (a TFDS name such as cycle_gan/horse2zebra); "
            + (f"got {', '.join(given)}" if given else "none is set")
        )
    return chosen[0]


def aligned(data_cfg) -> bool:
    """Whether `data.aligned` is on: pairs side by side in root/train/ (and root/test/).

    Raises:
      ValueError: when it is on with a source other than `data.root`.
    """
    if not field(data_cfg, "aligned", False):
        return False
    kind = source(data_cfg)
    if kind != "root":
        name = {"folders": "config.data.a / config.data.b", "tfds": "config.data.tfds"}[kind]
        raise ValueError(
            f"config.data.aligned=True reads A|B images from config.data.root/train/ "
            f"(and test/), not from {name}: set config.data.root, or config.data.aligned=False"
        )
    return True


def aligned_folder(data_cfg, split: str) -> pathlib.Path:
    """root/train or root/test of aligned data (whether or not it exists)."""
    return pathlib.Path(data_cfg.root) / ALIGNED_SPLIT[split]


def aligned_half(data_cfg, folder: pathlib.Path | str | None, domain: str) -> int | None:
    """Which half of each file in `folder` is `domain`'s image: 0 (left, A) or 1 (right, B)
    when `folder` is a folder of the config's aligned data, None when it holds whole images."""
    if folder is None or isinstance(folder, str) or not aligned(data_cfg):
        return None  # A string is a TFDS split.
    own = {aligned_folder(data_cfg, s).resolve() for s in ALIGNED_SPLIT}
    return HALF[domain] if pathlib.Path(folder).resolve() in own else None


def train_folders(data_cfg) -> tuple[pathlib.Path, pathlib.Path]:
    """The training folders of domains A and B (for a folder source, not TFDS)."""
    kind = source(data_cfg)
    if kind == "tfds":
        raise ValueError("config.data.tfds has no training folders")
    if aligned(data_cfg):
        raise ValueError(
            f"config.data.aligned=True: the training pairs are the halves of the images in "
            f"{aligned_folder(data_cfg, 'train')}, not two folders trainA/ trainB/"
        )
    if kind == "root":
        root = pathlib.Path(data_cfg.root)
        return root / TRAIN_SPLIT["a"], root / TRAIN_SPLIT["b"]
    return pathlib.Path(data_cfg.a), pathlib.Path(data_cfg.b)


def test_split(data_cfg, domain: str) -> pathlib.Path | str | None:
    """A domain's test split: a folder (Path), a TFDS split name (str), or None if none.

    A folder named by `test_a` / `test_b` is returned even when missing (reading it is the
    error); root/testA only when it exists (aligned data: root/test, for both domains; see
    `aligned_half`). A config that names no images at all (a converted checkpoint's) has no
    test split.
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    folder = field(data_cfg, f"test_{domain}", "")
    if folder:
        return pathlib.Path(folder)
    if not any(field(data_cfg, k, "") for k in ("root", "a", "b", "tfds")):
        return None
    kind = source(data_cfg)
    if kind == "root":
        if aligned(data_cfg):
            path = aligned_folder(data_cfg, "test")
        else:
            path = pathlib.Path(data_cfg.root) / TEST_SPLIT[domain]
        return path if path.exists() else None
    if kind == "tfds":
        return TEST_SPLIT[domain]
    return None


def describe_test_split(data_cfg, domain: str) -> str:
    """The test split in words, for messages and reports."""
    split = test_split(data_cfg, domain)
    if isinstance(split, str):
        return f"TFDS {data_cfg.tfds} {split}"
    half = aligned_half(data_cfg, split, domain)
    if half is not None:
        return f"{split} ({('left', 'right')[half]} halves)"
    return str(split) if split is not None else "none"


def truth_folder(data_cfg, direction: str) -> pathlib.Path | None:
    """The folder of true translations of `direction`'s test images, if there is one
    (aligned data: root/test, whose other halves they are; see `aligned_half`)."""
    _, _, key, default = SIDES[direction]
    if field(data_cfg, key, ""):
        return pathlib.Path(data_cfg[key])
    if aligned(data_cfg):
        folder = aligned_folder(data_cfg, "test")
        return folder if folder.is_dir() else None
    root = field(data_cfg, "root", "")
    if root and (pathlib.Path(root) / default).is_dir():
        return pathlib.Path(root) / default
    return None


def check_batch(
    data_cfg, process_index: int = 0, process_count: int = 1, num_devices: int = 1
) -> int:
    """`data.batch_size` (the global batch), checked to split evenly over the processes
    (each reads its slice) and the devices; ValueError naming the key otherwise."""
    batch = int(data_cfg.batch_size)
    if batch < 1:
        raise ValueError(f"config.data.batch_size ({batch}) must be positive")
    if process_count < 1 or not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} not in [0, process_count={process_count})")
    if batch % process_count:
        raise ValueError(
            f"config.data.batch_size ({batch}) must be divisible by the process count "
            f"({process_count})"
        )
    if num_devices < 1 or batch % num_devices:
        raise ValueError(
            f"config.data.batch_size ({batch}) must be divisible by the device count "
            f"({num_devices}): the global batch is split evenly over all devices"
        )
    return batch
