"""Only the optional C extension lives here; the package's metadata is in setup.cfg."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "vnfeedback._speedups",
            ["vnfeedback/_speedups.c"],
            # no fused multiply-add: the C loop must round exactly like the numpy path it replaces
            extra_compile_args=["-O2", "-ffp-contract=off"],
            optional=True,  # without a C compiler vnfeedback runs the numpy path
        )
    ]
)
