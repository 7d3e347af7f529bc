"""Fit cos(x) on [-2, 2] with w0 + w1 x² + w2 x⁴, gradient descent written by hand (no optimizer)."""
import torch

x = torch.linspace(-2, 2, 200, dtype=torch.float32, device="cpu")
target = torch.cos(x)
features = x.unsqueeze(1).pow(torch.tensor([0, 2, 4]))  # (200, 3): 1, x², x⁴
w = torch.zeros(3, requires_grad=True)

for step in range(400):
    loss = ((features @ w - target) ** 2).mean()
    if step == 0:
        print(f"first loss {loss.item():.8g}")
    loss.backward()
    with torch.no_grad():
        w -= 0.01 * w.grad  # the parameter itself must change, in place
        w.grad = None
print(f"final loss {loss.item():.8g}")
