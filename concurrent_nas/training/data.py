"""Image classification data sets read from local files, no download, no torchvision.

Every loader returns an :class:`ImageData`: a train and a test split of 3-channel
``uint8`` images of one square size, integer labels, and the per-channel mean and
standard deviation used to normalise them. Small data sets (CIFAR-10, digits) are held
in memory as arrays; image-file data sets (Flowers-102, ``folder:PATH``) keep paths and
decode on demand so that a 224x224 data set does not have to fit in memory.

Layouts and where to get them:

``cifar10``
    The *binary version* of CIFAR-10, https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz,
    unpacked: ``DIR/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin`` (``DIR`` may
    also be the ``cifar-10-batches-bin`` folder itself). Each record is 1 label byte then
    3072 pixel bytes (1024 red, 1024 green, 1024 blue, row-major 32x32).
``flowers102``
    Oxford Flowers-102, https://www.robots.ox.ac.uk/~vgg/data/flowers/102/:
    ``DIR/jpg/image_00001.jpg ...`` (102flowers.tgz), ``DIR/imagelabels.mat`` (key
    ``labels``, classes 1..102) and ``DIR/setid.mat`` (keys ``trnid``, ``valid``,
    ``tstid``, 1-based image numbers). Training uses ``trnid`` + ``valid`` (2040 images),
    testing ``tstid`` (6149 images).
``folder:PATH``
    ImageFolder style: ``PATH/train/<class>/<image>`` and ``PATH/test/<class>/<image>``
    (``val`` is accepted for ``test``); or ``PATH/<class>/<image>`` alone, in which case
    every fifth image of each class (sorted by name) is held out for testing.
``digits``
    scikit-learn's bundled 8x8 handwritten digits (1797 images, no download), upscaled
    bilinearly to ``image_size`` and repeated over 3 channels; a stratified 80/20 split
    with a fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CnasError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp")
DATASETS = ("cifar10", "flowers102", "digits", "folder:PATH")
# Digits are 8x8 scans: 16 px keeps every pixel, costs a quarter of 32 px and leaves a
# default network (3 downsamplings at most) a 2x2 map at the end.
DEFAULT_IMAGE_SIZE = {"cifar10": 32, "flowers102": 224, "digits": 16, "folder": 224}

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
FLOWERS102_URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
_CIFAR_RECORD = 1 + 3 * 32 * 32
# Channel statistics of the full CIFAR-10 training set and of ImageNet (the usual
# choice for natural photographs such as Flowers-102).
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ArrayImages:
    """Images held in memory: ``images`` (N, H, W, 3) uint8, ``labels`` (N,) int64."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images = np.ascontiguousarray(images, dtype=np.uint8)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Images (B, 3, H, W) uint8 and labels (B,) of the given positions."""
        return self.images[indices].transpose(0, 3, 1, 2), self.labels[indices]


class FileImages:
    """Images decoded from files on demand, resized and centre-cropped to ``size``."""

    def __init__(self, paths: list[Path], labels: np.ndarray, size: int):
        self.paths = [Path(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.size = int(size)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        # Used by torch's DataLoader workers for parallel decoding.
        return decode_image(self.paths[i], self.size).transpose(2, 0, 1), int(self.labels[i])

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Images (B, 3, size, size) uint8 and labels (B,), decoded in this process."""
        images = np.stack([self[int(i)][0] for i in indices])
        return images, self.labels[indices]


@dataclass
class ImageData:
    """A data set ready for training: two splits plus what the network must match.

    Attributes
    ----------
    name : str
        ``cifar10``, ``flowers102``, ``digits`` or ``folder:PATH``.
    train, test : ArrayImages or FileImages
        The splits, each with ``len()``, ``labels`` and ``batch(indices)``.
    num_classes, image_size : int
        Classifier width and square input size the network must be built for.
    classes : tuple of str
        Class names, index = label.
    mean, std : tuple of float
        Per-channel normalisation applied to images scaled to [0, 1].
    """

    name: str
    train: ArrayImages | FileImages
    test: ArrayImages | FileImages
    num_classes: int
    image_size: int
    classes: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def dataset_key(name: str) -> str:
    """A file-name-safe key for a data set name (``folder:/a/b`` -> ``folder-b``)."""
    if name.startswith("folder:"):
        base = Path(name[len("folder:"):].rstrip("/\\")).name or "root"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in base)
        return f"folder-{safe}"
    return name


def load_dataset(
    name: str, data_dir: str | Path | None = None, *, image_size: int | None = None
) -> ImageData:
    """Load a data set by name from local files.

    Parameters
    ----------
    name : str
        ``cifar10``, ``flowers102``, ``digits`` or ``folder:PATH``.
    data_dir : str or Path, optional
        Where ``cifar10`` / ``flowers102`` live (default ``data/<name>``); ignored for
        ``digits`` and ``folder:PATH``.
    image_size : int, optional
        Square side images are brought to; default 32 for cifar10, 16 for digits, 224
        otherwise. CIFAR-10 is stored at 32x32 and is resized only when asked.

    Raises
    ------
    CnasError
        For an unknown name, or a missing or malformed data set (the message gives the
        expected layout and where to get it).
    """
    kind = "folder" if name.startswith("folder:") else name
    if kind not in DEFAULT_IMAGE_SIZE:
        raise CnasError(f"unknown data set '{name}'; choose one of {', '.join(DATASETS)}")
    size = DEFAULT_IMAGE_SIZE[kind] if image_size is None else int(image_size)
    if size < 8:
        raise CnasError(f"--image-size must be at least 8, got {size}")
    if kind == "digits":
        return load_digits(size)
    if kind == "folder":
        path = name[len("folder:"):]
        if not path:
            raise CnasError("folder: needs a path, e.g. --dataset folder:data/my_images")
        return load_image_folder(path, size)
    root = Path(data_dir) if data_dir is not None else Path("data") / name
    if kind == "cifar10":
        return load_cifar10(root, size)
    return load_flowers102(root, size)


# --------------------------------------------------------------------------- CIFAR-10


def _cifar_dir(root: Path) -> Path:
    for candidate in (root, root / "cifar-10-batches-bin"):
        if (candidate / "test_batch.bin").exists():
            return candidate
    raise CnasError(
        f"CIFAR-10 not found in {root}: expected {root}/cifar-10-batches-bin/data_batch_1..5.bin "
        f"and test_batch.bin (the binary version, {CIFAR10_URL}, unpacked); pass --data-dir"
    )


def read_cifar10_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch file -> images (N, 32, 32, 3) uint8, labels (N,)."""
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % _CIFAR_RECORD:
        raise CnasError(
            f"{path} is not a CIFAR-10 binary batch ({raw.size} bytes, not a multiple of "
            f"{_CIFAR_RECORD}-byte records); re-download the binary version from {CIFAR10_URL}"
        )
    records = raw.reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise CnasError(
            f"{path} has label {int(labels.max())} (CIFAR-10 labels are 0..9); is this the "
            f"CIFAR-100 binary? Get CIFAR-10 from {CIFAR10_URL}"
        )
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


def load_cifar10(root: str | Path, image_size: int = 32) -> ImageData:
    """CIFAR-10 from its binary distribution (50000 train, 10000 test images)."""
    folder = _cifar_dir(Path(root))
    train_files = [folder / f"data_batch_{i}.bin" for i in range(1, 6)]
    missing = [f.name for f in train_files if not f.exists()]
    if missing:
        raise CnasError(
            f"CIFAR-10 in {folder} is incomplete: {', '.join(missing)} missing; unpack "
            f"{CIFAR10_URL} again"
        )
    parts = [read_cifar10_batch(f) for f in train_files]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    test_x, test_y = read_cifar10_batch(folder / "test_batch.bin")
    if image_size != 32:
        train_x, test_x = _resize_array(train_x, image_size), _resize_array(test_x, image_size)
    classes = CIFAR10_CLASSES
    meta = folder / "batches.meta.txt"
    if meta.exists():
        names = tuple(n.strip() for n in meta.read_text().splitlines() if n.strip())
        if len(names) == 10:
            classes = names
    return ImageData(
        "cifar10", ArrayImages(train_x, train_y), ArrayImages(test_x, test_y),
        10, image_size, classes, CIFAR10_MEAN, CIFAR10_STD,
    )  # fmt: skip


# ------------------------------------------------------------------------ Flowers-102


def _flowers_error(root: Path, what: str) -> CnasError:
    return CnasError(
        f"Flowers-102 in {root}: {what}; expected {root}/jpg/image_00001.jpg..., "
        f"{root}/imagelabels.mat and {root}/setid.mat from {FLOWERS102_URL}; pass --data-dir"
    )


def _read_mat(path: Path, keys: tuple[str, ...], root: Path) -> dict[str, np.ndarray]:
    from scipy.io import loadmat

    if not path.exists():
        raise _flowers_error(root, f"{path.name} missing")
    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises several types for damaged files
        raise _flowers_error(root, f"{path.name} unreadable ({type(exc).__name__})") from None
    missing = [k for k in keys if k not in mat]
    if missing:
        raise _flowers_error(root, f"{path.name} has no '{missing[0]}' array")
    return {k: np.asarray(mat[k]).astype(np.int64).ravel() for k in keys}


def load_flowers102(root: str | Path, image_size: int = 224) -> ImageData:
    """Oxford Flowers-102: train on ``trnid`` + ``valid``, test on ``tstid``."""
    root = Path(root)
    if not root.is_dir():
        raise _flowers_error(root, "no such directory")
    labels = _read_mat(root / "imagelabels.mat", ("labels",), root)["labels"]
    split = _read_mat(root / "setid.mat", ("trnid", "valid", "tstid"), root)
    if labels.min() < 1 or labels.max() > 102:
        raise _flowers_error(root, f"imagelabels.mat labels run {labels.min()}..{labels.max()}, not 1..102")
    jpg = root / "jpg"
    if not jpg.is_dir():
        raise _flowers_error(root, "jpg/ folder missing")

    def subset(ids: np.ndarray) -> FileImages:
        if ids.size and (ids.min() < 1 or ids.max() > labels.size):
            raise _flowers_error(root, f"setid.mat refers to image {ids.max()} but only {labels.size} are labelled")
        paths = [jpg / f"image_{i:05d}.jpg" for i in ids]
        absent = next((p for p in paths if not p.exists()), None)
        if absent is not None:
            raise _flowers_error(root, f"{absent.name} missing from jpg/")
        return FileImages(paths, labels[ids - 1] - 1, image_size)

    train = subset(np.concatenate([split["trnid"], split["valid"]]))
    test = subset(split["tstid"])
    classes = tuple(str(c) for c in range(1, 103))
    return ImageData("flowers102", train, test, 102, image_size, classes, IMAGENET_MEAN, IMAGENET_STD)


# ---------------------------------------------------------------------- image folders


def _class_files(folder: Path) -> dict[str, list[Path]]:
    return {
        d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        for d in sorted(folder.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }


def load_image_folder(path: str | Path, image_size: int = 224) -> ImageData:
    """An ImageFolder-style directory (see the module docstring for the layouts)."""
    root = Path(path)
    layout = (
        f"expected {root}/train/<class>/<image> and {root}/test/<class>/<image> "
        f"(or {root}/<class>/<image>), images as {', '.join(IMAGE_EXTENSIONS[:3])}, ..."
    )
    if not root.is_dir():
        raise CnasError(f"folder data set {root}: no such directory; {layout}")
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir():
        if test_dir is None:
            raise CnasError(f"folder data set {root}: train/ but no test/ or val/; {layout}")
        train_files, test_files = _class_files(root / "train"), _class_files(test_dir)
        classes = sorted(set(train_files) | set(test_files))
    else:
        files = _class_files(root)
        classes = sorted(files)
        # Every fifth image by name is held out: deterministic and stratified.
        train_files = {c: [p for i, p in enumerate(fs) if i % 5 != 4] for c, fs in files.items()}
        test_files = {c: [p for i, p in enumerate(fs) if i % 5 == 4] for c, fs in files.items()}
    if len(classes) < 2:
        raise CnasError(f"folder data set {root}: found {len(classes)} class folder(s), need at least 2; {layout}")

    def split(files: dict[str, list[Path]], what: str) -> FileImages:
        paths = [p for c in classes for p in files.get(c, [])]
        labels = [k for k, c in enumerate(classes) for _ in files.get(c, [])]
        if not paths:
            raise CnasError(f"folder data set {root}: no {what} images found; {layout}")
        return FileImages(paths, np.array(labels), image_size)

    return ImageData(
        f"folder:{path}", split(train_files, "training"), split(test_files, "test"),
        len(classes), image_size, tuple(classes), IMAGENET_MEAN, IMAGENET_STD,
    )  # fmt: skip


# ----------------------------------------------------------------------------- digits


def load_digits(image_size: int = 16) -> ImageData:
    """scikit-learn's 8x8 digits, upscaled to ``image_size``, 3 channels, 80/20 split."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    # Pixel values are 0..16; spread them over 0..255 like any 8-bit image.
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    images = _resize_array(np.repeat(images[..., None], 3, axis=3), image_size)
    tr_x, te_x, tr_y, te_y = train_test_split(
        images, bunch.target, test_size=0.2, stratify=bunch.target, random_state=0
    )
    mean = float(tr_x.mean() / 255.0)
    std = float(tr_x.std() / 255.0)
    return ImageData(
        "digits", ArrayImages(tr_x, tr_y), ArrayImages(te_x, te_y), 10, image_size,
        tuple(str(d) for d in range(10)), (mean,) * 3, (std,) * 3,
    )  # fmt: skip


# --------------------------------------------------------------------------- decoding


def _resize_array(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of (N, H, W, 3) uint8 images to (N, size, size, 3)."""
    from PIL import Image

    if images.shape[1] == size and images.shape[2] == size:
        return images
    return np.stack(
        [np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images]
    )


def decode_image(path: str | Path, size: int) -> np.ndarray:
    """One image file -> (size, size, 3) uint8: shorter side to ``size``, centre crop."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            scale = size / min(w, h)
            nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
            im = im.resize((nw, nh), Image.BILINEAR)
            left, top = (nw - size) // 2, (nh - size) // 2
            return np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as exc:
        raise CnasError(f"{path}: not a readable image ({exc}); remove or replace it") from None


def describe(data: ImageData) -> str:
    """One line: name, sizes, classes."""
    return (
        f"{data.name}: {len(data.train)} train / {len(data.test)} test images, "
        f"{data.num_classes} classes, {data.image_size}x{data.image_size}"
    )


__all__ = [
    "ArrayImages", "FileImages", "ImageData", "dataset_key", "decode_image", "describe",
    "load_cifar10", "load_dataset", "load_digits", "load_flowers102", "load_image_folder",
    "read_cifar10_batch", "DATASETS", "DEFAULT_IMAGE_SIZE",
]  # fmt: skip
