"""Assignment 7's graded tests: nothing to set up beyond the helpers (`a7_helpers`).

The server's inference runs in ONNX Runtime on the CPU; the tests send single requests or a
few dozen at once, so they need no GPU and no network: the app runs inside the test client.
"""
