"""Fit a parabola through a custom autograd Function written in PyTorch's ctx style."""
import torch


class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        return t * t

    @staticmethod
    def backward(ctx, grad_output):
        (t,) = ctx.saved_tensors
        return 2 * t * grad_output


x = torch.linspace(-1, 3, 100)
y = 0.5 * (x - 1.2) ** 2 - 0.3
scale = torch.full((), 1.0, requires_grad=True)
centre = torch.full((), 0.0, requires_grad=True)
shift = torch.full((), 0.0, requires_grad=True)
for step in range(300):
    loss = (scale * Square.apply(x - centre) + shift - y).pow(2).mean()
    if step == 0:
        print(f"first loss {loss.item():.8g}")
    loss.backward()
    with torch.no_grad():
        for p in (scale, centre, shift):
            p -= 0.02 * p.grad
            p.grad = None
print(f"final loss {loss.item():.8g}")
