"""A module using every construct the importer cannot take over, and a few it translates."""

import math

import torch
import torch.nn.functional as F
from torch import nn

HIDDEN = 64


class Scale(nn.Module):
    def __init__(self, factor=2.0):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor * math.pi


class Net(nn.Module):
    def __init__(self, n_in, classes=10):
        super().__init__()
        self.fc1 = nn.Linear(n_in, HIDDEN)
        self.fc2 = nn.Lienar(HIDDEN, HIDDEN)
        self.fc3 = nn.Linear(HIDDEN, classes, bais=False)
        self.drop = nn.Dropout(p=1.5)
        self.blocks = nn.ModuleList([nn.Linear(HIDDEN, HIDDEN) for _ in range(3)])
        self.scale = Scale(0.5)
        self.unused = nn.Tanh()
        self.norm = nn.LayerNorm(HIDDEN, **extra)
        self.lstm = nn.LSTM(HIDDEN, HIDDEN, batch_first=True)

    def helper(self, x):
        return x

    def forward(self, x):
        x = F.relu(self.fc1(x))
        h = self.fc2(x)
        x = x + self.fc3(h)
        if x.sum() > 0:
            x = -x
        for block in self.blocks:
            x = block(x)
        x = torch.cat([x, x], dim=1)
        x = self.helper(x)
        x = F.dropout(x, 0.2)
        x = self.scale(x)
        x = self.drop(self.helper(self.lstm(x)[0]))
        x = x[:, :10]
        x = F.layer_norm(x, (10,))
        x = x.view(x.shape[0], -1)
        return torch.sigmoid(x).mean()


net = Net(n_in=20).to("cpu")
net.apply(init_weights)
print(net(torch.randn(8, 20)).shape)
