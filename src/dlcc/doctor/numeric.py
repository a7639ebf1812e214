"""Packages: NumPy (working, and which BLAS it uses) and the optional ones."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from dlcc.doctor.machine import _pip_install, _version_tuple
from dlcc.doctor.report import Check


def numpy_check() -> Check:
    """NumPy importable and computing a known product correctly (fail otherwise)."""
    try:
        import numpy as np
    except Exception as error:
        return Check(
            "numpy",
            "fail",
            f"not importable: {type(error).__name__}: {error}",
            f"install it: `make install` or {_pip_install('numpy')}",
        )
    product = np.arange(6.0).reshape(2, 3) @ np.arange(6.0).reshape(3, 2)
    if not np.array_equal(product, [[10.0, 13.0], [28.0, 40.0]]):
        return Check(
            "numpy",
            "fail",
            f"{np.__version__} computes a wrong matrix product",
            f"reinstall it: {_pip_install('--force-reinstall numpy')}",
        )
    if _version_tuple(np.__version__) < (1, 26):
        return Check(
            "numpy",
            "warn",
            f"{np.__version__}, older than the 1.26 the course is tested with",
            f"upgrade: {_pip_install('--upgrade numpy')}",
        )
    return Check("numpy", "ok", np.__version__, details={"version": np.__version__})


def numpy_blas_build() -> dict[str, Any]:
    """The BLAS NumPy was built against, from ``numpy.show_config`` ({} when unknown)."""
    import numpy as np

    try:
        config = np.show_config(mode="dicts")
    except TypeError:  # NumPy < 1.26 only prints
        return {}
    return dict(config.get("Build Dependencies", {}).get("blas", {}))


def numpy_blas_pools() -> list[dict[str, Any]]:
    """threadpoolctl's view of the BLAS libraries loaded for NumPy (thread counts, CPU arch)."""
    import numpy  # noqa: F401  (threadpoolctl only sees libraries already loaded)
    from threadpoolctl import threadpool_info

    pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
    # torch and scipy may load BLAS libraries of their own; prefer the one inside numpy.
    own = [pool for pool in pools if "numpy" in str(pool.get("filepath", ""))]
    return own or pools


def blas_check() -> Check:
    """NumPy's BLAS; a warn when none is found (matrix products then run 10-100x slower)."""
    build = numpy_blas_build()
    pools = numpy_blas_pools()
    if pools:
        pool = pools[0]
        extras = [str(pool[key]) for key in ("architecture", "threading_layer") if pool.get(key)]
        version = pool.get("version") or ""
        value = f"{pool.get('internal_api', 'blas')} {version}".strip()
        if extras:
            value += f" ({', '.join(extras)})"
        value += f", {pool.get('num_threads')} threads"
        details = {"library": pool.get("internal_api"), "threads": pool.get("num_threads")}
        return Check("blas", "ok", value, details=details)
    name = str(build.get("name", "")).lower()
    if build.get("found") and any(known in name for known in ("accelerate", "mkl", "openblas")):
        # Apple's Accelerate is fast but invisible to threadpoolctl.
        value = f"{build['name']} {build.get('version', '')}".strip()
        return Check("blas", "ok", value, details={"library": build["name"]})
    return Check(
        "blas",
        "warn",
        f"no optimised BLAS found (NumPy built with {build.get('name') or 'unknown'})",
        "matrix products will be slow: install NumPy's official wheel, which bundles OpenBLAS: "
        f"{_pip_install('--force-reinstall --only-binary=:all: numpy')}",
    )


OPTIONAL_PACKAGES = {
    "torchmetrics": "metrics in the PyTorch assignments",
    "matplotlib": "training curves and figures",
}


def optional_package_check(package: str) -> Check:
    """Installed (ok, with its version) or not (warn); read from metadata, not imported."""
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return Check(
            package,
            "warn",
            f"not installed (used for {OPTIONAL_PACKAGES.get(package, 'some assignments')})",
            f"install it: {_pip_install(package)}",
        )
    return Check(package, "ok", version, details={"version": version})
