"""whitebox-raw: the whitebox edits learned on camera-linear ("RAW-like") inputs, as the paper trains them.

The same network and operations as `xfix.archs.whitebox`, reading and writing linear ProPhoto RGB, the
working space a RAW file is decoded into: it learns from unprocessed pairs (`xfix.data.synthesis.unprocess`:
sensor values before any camera curve) and corrects a RAW photo before any base rendering, where the
display-referred whitebox sees the neutral rendering of it.
"""

from __future__ import annotations

import dataclasses
from functools import partial

from xfix.archs import whitebox

ENCODING = "linear-prophoto"

ARCHITECTURE = dataclasses.replace(
    whitebox.ARCHITECTURE,
    name="whitebox-raw",
    description="Interpretable edits learned on camera-linear (RAW-like) inputs (Hu et al. 2018)",
    build=partial(whitebox.build, encoding=ENCODING),
    encoding=ENCODING,
)
