"""A small tanh network fitted to sin(x) with nn.Sequential, a loss module and an optimizer (argv[1])."""
import sys

import torch

x = torch.linspace(-3, 3, 64).unsqueeze(-1)
y = torch.sin(x).flatten()
model = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1), torch.nn.Flatten(0, 1))
with torch.no_grad():  # fixed starting weights, so that PyTorch and minidl take the same path
    for i, p in enumerate(model.parameters()):
        n = p.numel()
        p.copy_(torch.linspace(-0.8, 0.9, n).reshape(p.size()) * (-1) ** i)
name = sys.argv[1] if len(sys.argv) > 1 else "SGD"
options = {"SGD": dict(lr=0.05, momentum=0.9), "Adam": dict(lr=0.01), "RMSprop": dict(lr=0.003),
           "Adagrad": dict(lr=0.1)}[name]
optimizer = getattr(torch.optim, name)(model.parameters(), **options)
loss_fn = torch.nn.MSELoss(reduction="mean")
for step in range(200):
    loss = loss_fn(model(x), y)
    if step == 0:
        print(f"first loss {loss.item():.8g}")
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"final loss {loss.item():.8g}")
