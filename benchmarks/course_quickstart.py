"""The program bench_quickstart.py times: PyTorch's beginner-course Fashion-MNIST classifier, written for
PyTorch (``import torch``, ``torchvision``), run unchanged on PyTorch and with ``python -m minidl.as_torch``.

It does what the course's quickstart does, in the same order and with the same settings: FashionMNIST
from ``data/`` with ``ToTensor()``, ``DataLoader(batch_size=64)`` without shuffling, Flatten then
784-512-512-10 with ReLUs, cross-entropy, SGD with lr 1e-3, ``EPOCHS`` epochs of training with a loss line
every 100 batches and a test pass after each, then the weights saved and loaded back. The last line is
JSON: seconds of the whole run after the imports, and each epoch's test accuracy.

    python benchmarks/course_quickstart.py [epochs]                     # PyTorch
    python -m minidl.as_torch benchmarks/course_quickstart.py [epochs]  # minidl
"""
import json
import sys
import time

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import ToTensor

EPOCHS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
start = time.perf_counter()

train_set = datasets.FashionMNIST(root="data", train=True, download=True, transform=ToTensor())
test_set = datasets.FashionMNIST(root="data", train=False, download=True, transform=ToTensor())
train_loader = DataLoader(train_set, batch_size=64)
test_loader = DataLoader(test_set, batch_size=64)
device = "cuda" if torch.cuda.is_available() else "cpu"


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.layers = nn.Sequential(nn.Linear(28 * 28, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                                    nn.Linear(512, 10))

    def forward(self, x):
        return self.layers(self.flatten(x))


model = Classifier().to(device)
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)


def train_epoch():
    model.train()
    for step, (images, labels) in enumerate(train_loader):
        images, labels = images.to(device), labels.to(device)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % 100 == 0:
            print(f"loss: {loss.item():>7f}  [{(step + 1) * len(images):>5d}/{len(train_loader.dataset):>5d}]")


def test_accuracy():
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for images, labels in test_loader:
            images, labels = images.to(device), labels.to(device)
            scores = model(images)
            total_loss += loss_fn(scores, labels).item()
            correct += (scores.argmax(1) == labels).type(torch.float).sum().item()
    accuracy = correct / len(test_loader.dataset)
    print(f"Test Error: \n Accuracy: {100 * accuracy:>0.1f}%, Avg loss: {total_loss / len(test_loader):>8f} \n")
    return accuracy


accuracies = []
for epoch in range(EPOCHS):
    print(f"Epoch {epoch + 1}\n-------------------------------")
    train_epoch()
    accuracies.append(test_accuracy())
torch.save(model.state_dict(), "model.pth")
model = Classifier().to(device)
model.load_state_dict(torch.load("model.pth", weights_only=True))
print(json.dumps({"seconds": time.perf_counter() - start, "accuracies": accuracies}))
