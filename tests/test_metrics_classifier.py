import json
import sys

import numpy as np
import pytest
import torch
from metrics_fixtures import mnist5k

from gansweep.errors import CheckpointError, ConfigError
from gansweep.metrics import classifier, inception
from gansweep.metrics.classifier import (
    heldout_split,
    info_resource,
    load_digit_classifier,
)
from gansweep.metrics.features import load_digit_net


@pytest.fixture(scope="module")
def shipped():
    return load_digit_classifier(torch.device("cpu"))


def test_heldout_split_is_stratified_and_disjoint():
    labels = mnist5k()[1].numpy()
    train, test = heldout_split(labels)
    assert (len(train), len(test)) == (4000, 1000)
    assert np.intersect1d(train, test).size == 0
    assert np.bincount(labels[test]).tolist() == [100] * 10


def test_shipped_classifier_reaches_recorded_heldout_accuracy(shipped):
    model, sha256 = shipped
    info = json.loads(info_resource().read_text())
    images, labels = mnist5k()
    _, test = heldout_split(labels.numpy())
    with torch.no_grad():
        acc = (model(images[test]).argmax(dim=1) == labels[test]).double().mean().item()
    assert acc >= 0.97
    assert acc == pytest.approx(info["heldout_accuracy"], abs=1e-3)
    assert (info["n_train"], info["n_test"]) == (4000, 1000)
    assert sha256 == info["sha256"]
    assert not model.training


def test_features_are_128_wide_and_resized_inputs_work():
    net = load_digit_net(torch.device("cpu"))
    x = torch.zeros(2, 1, 32, 32) - 1
    assert net.features(x).shape == (2, 128)
    assert net.probs(x).sum(dim=1).tolist() == pytest.approx([1.0, 1.0])


def test_missing_weights_raise_checkpoint_error(monkeypatch, tmp_path):
    monkeypatch.setattr(classifier, "weights_resource", lambda: tmp_path / "digit_cnn.pt")
    with pytest.raises(CheckpointError, match="digit classifier weights missing"):
        load_digit_classifier(torch.device("cpu"))


# FID Inception: only the offline error paths can run here.


def test_inception_env_var_pointing_nowhere(monkeypatch, tmp_path):
    monkeypatch.setenv(inception.ENV_VAR, str(tmp_path / "nope.pth"))
    with pytest.raises(CheckpointError, match=r"GANSWEEP_INCEPTION_WEIGHTS=.*nope.pth: no such file"):
        inception.load_inception(torch.device("cpu"))


def test_inception_weights_absent_names_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(CheckpointError, match=r"not found \(GANSWEEP_INCEPTION_WEIGHTS unset, not at .*hub/checkpoints/pt_inception"):
        inception.load_inception(torch.device("cpu"))


def test_inception_without_pytorch_fid_names_the_package(monkeypatch, tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    monkeypatch.setenv(inception.ENV_VAR, str(weights))
    monkeypatch.setitem(sys.modules, "pytorch_fid", None)  # makes the import fail
    with pytest.raises(ConfigError, match="pip install pytorch-fid"):
        inception.load_inception(torch.device("cpu"))


def test_inception_loads_local_weights_when_pytorch_fid_is_installed(monkeypatch, tmp_path):
    pytest.importorskip("pytorch_fid")
    import torchvision

    # Random weights with the FID network's keys: torchvision's layout, 1008 classes.
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    path = tmp_path / "pt_inception.pth"
    torch.save(net.state_dict(), path)
    monkeypatch.setenv(inception.ENV_VAR, str(path))
    loaded = inception.load_inception(torch.device("cpu"))
    assert loaded.features(torch.zeros(2, 1, 32, 32)).shape == (2, 2048)
