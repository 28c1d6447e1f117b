"""Built-in differentiable ops: each is a ``tg.autograd.Function`` whose forward
and backward call launchers in ``tritongrad.kernels``."""
