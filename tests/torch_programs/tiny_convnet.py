"""A two-class convolutional net on a fixed 8x8 image: conv, relu, pool, view, linear, cross-entropy."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.fc = nn.Linear(3 * 3 * 3, 2)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), (2, 2))
        return self.fc(x.view(-1, x.size(1) * x.size(2) * x.size(3)))


net = Tiny()
with torch.no_grad():
    for i, p in enumerate(net.parameters()):
        p.copy_(torch.linspace(-0.3, 0.4, p.numel()).reshape(p.size()) * (-1) ** i)
image = torch.linspace(0, 1, 64).reshape(1, 1, 8, 8)
label = torch.tensor([0])
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
for step in range(30):
    loss = criterion(net(image), label)
    if step == 0:
        print(f"first loss {loss.item():.8g}")
        print("recorded:", loss.grad_fn is not None)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"final loss {loss.item():.8g}")
