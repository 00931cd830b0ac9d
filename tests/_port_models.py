"""The PyTorch models the port is tested on (imported only when torch is live).

The document's net in its three variants, torchvision's ResNet-18 and ResNet-50 (the
reference network of ``torchsem.compare._torch_resnet``), a Transformer classifier built from
``nn.TransformerEncoder``, an LSTM tagger, and modules the port must refuse or route around.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from torchsem.compare._torch_net import torch_net_class
from torchsem.compare._torch_resnet import torch_resnet


def document_net() -> nn.Module:
    """The document's ``net``: AvgPool1d(2) -> BatchNorm1d(3) -> reshape -> Linear(12, 4)."""
    return torch_net_class()()


def document_net_detach() -> nn.Module:
    """Example two: ``x = x.detach()`` after the reshape (BatchNorm gets no gradient)."""
    return torch_net_class(detach=True)()


def document_net_frozen() -> nn.Module:
    """Example one: ``fc1.weight.requires_grad = False``."""
    model = torch_net_class()()
    model.fc1.weight.requires_grad_(False)
    return model


def resnet18() -> nn.Module:
    return torch_resnet("resnet18", num_classes=10)


def resnet50() -> nn.Module:
    return torch_resnet("resnet50", num_classes=10)


class TransformerClassifier(nn.Module):
    """Embedding -> TransformerEncoder(2 layers) -> mean over the sequence -> Linear."""

    def __init__(self, vocab: int = 20, d_model: int = 16, classes: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        layer = nn.TransformerEncoderLayer(d_model, 2, 32, dropout=dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.encoder(self.embed(tokens))
        return self.head(x.mean(dim=1))


class LSTMTagger(nn.Module):
    """Embedding -> bidirectional LSTM -> Dropout -> Linear -> log_softmax, a tag per token."""

    def __init__(self, vocab: int = 20, embed: int = 8, hidden: int = 12, tags: int = 5, p: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(p)
        self.out = nn.Linear(2 * hidden, tags)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.embed(tokens))
        return F.log_softmax(self.out(self.drop(h)), dim=-1)


def transformer_classifier() -> nn.Module:
    return TransformerClassifier()


def lstm_tagger() -> nn.Module:
    return LSTMTagger()


class DataDependent(nn.Module):
    """A user-style module whose forward branches on a tensor's value: fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.gate = Gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.fc(x))


class Gate(nn.Module):
    """Doubles its input when the input's sum is positive (control flow on a value)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x * 2
        return x


class TrainingBranch(nn.Module):
    """A forward that reads ``self.training`` (noise-free stand-in: a scale in train mode only) and F.dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if self.training:
            y = y * 0.5
        return F.dropout(y, p=0.25, training=self.training)


class Unsupported(nn.Module):
    """Calls ``torch.fft.fft``, which the port does not reproduce."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft(self.fc(x)).real


class Functional(nn.Module):
    """Functional calls, tensor methods, operators, an owned Parameter and buffer, in-place ops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, 4).reshape(1, 4, 1, 1))
        self.register_buffer("shift", torch.linspace(-0.2, 0.2, 4).reshape(1, 4, 1, 1))
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv(x)) * self.scale + self.shift
        y = F.max_pool2d(y, 2)
        z = y.permute(0, 2, 3, 1).contiguous()
        z = z.view(z.size(0), -1, 4).transpose(1, 2)
        a, b = z.chunk(2, dim=1)
        w = torch.cat([a.mean(dim=-1), b.amax(dim=-1)], dim=1)
        w = w - w.mean(dim=1, keepdim=True)
        w += 1.0
        w = torch.stack([w, w.sigmoid()], dim=1).flatten(1)[:, :8]
        return F.gelu(self.fc(w)) + x[:, 0, 0, :2]


class InPlace(nn.Module):
    """``x.relu_()`` then a use of ``x``: PyTorch's later reads see the mutation."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        y = h.relu_()
        return h * y + y.sigmoid_()


class AugmentedAssignment(nn.Module):
    """``h += 1`` on a tensor with another name: fx records ``h = h + 1``, so the port's verify refuses it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        y = h.relu_()
        h += 1.0
        return h * y


class WriteThroughView(nn.Module):
    """An in-place write through a view, which the port refuses."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.view(-1)
        v.add_(1.0)
        return x


class UnusedState(nn.Module):
    """A submodule with parameters that forward never calls."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.aux = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class UnsupportedLayer(nn.Module):
    """A ``torch.nn`` layer torchsem has no counterpart of."""

    def __init__(self) -> None:
        super().__init__()
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(x)


class Containers(nn.Module):
    """Sequential with named members, ModuleList and ModuleDict reached by index and key."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.0), nn.ReLU())
        self.blocks = nn.ModuleList([nn.Linear(6, 6), nn.Linear(6, 6)])
        self.heads = nn.ModuleDict({"a": nn.Linear(6, 2), "b": nn.Linear(6, 3)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = torch.tanh(block(x))
        return torch.cat([self.heads["a"](x), self.heads["b"](x)], dim=1)


def cli_factory() -> tuple[nn.Module, torch.Tensor]:
    """For ``torchsem port tests/_port_models.py:cli_factory``: the document's net and an input."""
    torch.manual_seed(0)
    return document_net(), torch.randn(4, 3, 8)
