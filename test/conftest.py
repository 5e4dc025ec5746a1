"""Fixtures every test module sees.

``small_model`` lives here, not imported into each module: an imported fixture is a new fixture per
module, and each copy exported the network again (about 200 MB of checkpoints and ONNX per module
in the temporary folder). Here it is exported once per session.
"""

from model_fixtures import small_model  # noqa: F401 - the session-wide fixture

