"""Pure, jit- and vmap-friendly array kernels of jaxwalras (installed as ``jaxwalras.kernels``).

Nothing here touches Python objects or the host: every function takes arrays and returns
arrays, so it can run on whole batches of markets on the device.
"""
