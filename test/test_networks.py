"""The network: output shapes, size checks, torchvision key compatibility, ImageNet weight loading."""

from __future__ import annotations

import pytest
import torch

from gam_depth_ros.inference.postprocessing import disparity_to_depth
from gam_depth_ros.model_config import ModelConfig
from gam_depth_ros.networks import GamDepthNet, ResNetEncoder, UNetDecoder
from gam_depth_ros.networks.resnet import load_imagenet_weights


def torchvision_resnet18_keys() -> dict[str, tuple[int, ...]]:
    """The state-dict keys and shapes of torchvision's resnet18, written out from its definition."""
    bn = lambda p, c: {f"{p}.weight": (c,), f"{p}.bias": (c,), f"{p}.running_mean": (c,),  # noqa: E731
                       f"{p}.running_var": (c,), f"{p}.num_batches_tracked": ()}
    keys = {"conv1.weight": (64, 3, 7, 7), **bn("bn1", 64)}
    channels = {1: (64, 64), 2: (64, 128), 3: (128, 256), 4: (256, 512)}
    for layer, (c_in, c_out) in channels.items():
        for block in (0, 1):
            p = f"layer{layer}.{block}"
            first_in = c_in if block == 0 else c_out
            keys[f"{p}.conv1.weight"] = (c_out, first_in, 3, 3)
            keys.update(bn(f"{p}.bn1", c_out))
            keys[f"{p}.conv2.weight"] = (c_out, c_out, 3, 3)
            keys.update(bn(f"{p}.bn2", c_out))
            if block == 0 and layer > 1:
                keys[f"{p}.downsample.0.weight"] = (c_out, c_in, 1, 1)
                keys.update(bn(f"{p}.downsample.1", c_out))
    keys["fc.weight"] = (1000, 512)
    keys["fc.bias"] = (1000,)
    return keys


def test_encoder_state_dict_matches_torchvision_resnet18():
    expected = {k: v for k, v in torchvision_resnet18_keys().items() if not k.startswith("fc.")}
    assert len(expected) == 120  # torchvision's 122 entries minus the classifier
    state = ResNetEncoder().state_dict()
    assert list(state) == list(expected)  # same names, same order as torchvision
    assert {k: tuple(v.shape) for k, v in state.items()} == expected


def test_imagenet_weights_load_from_local_torchvision_file(tmp_path):
    torch.manual_seed(0)
    source = {k: torch.randn(s) if s else torch.tensor(7) for k, s in torchvision_resnet18_keys().items()}
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(source, path)
    encoder = ResNetEncoder()
    load_imagenet_weights(encoder, path)
    assert torch.equal(encoder.layer3[1].bn2.running_var,
                       source["layer3.1.bn2.running_var"])
    pose_encoder = ResNetEncoder(in_images=2)
    load_imagenet_weights(pose_encoder, path)
    assert pose_encoder.conv1.weight.shape == (64, 6, 7, 7)
    torch.testing.assert_close(pose_encoder.conv1.weight[:, 3:], source["conv1.weight"] / 2)


def test_imagenet_weights_errors_name_the_file(tmp_path):
    bad_keys = tmp_path / "not_resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, bad_keys)
    with pytest.raises(ValueError, match="not_resnet.pth.*missing"):
        load_imagenet_weights(ResNetEncoder(), bad_keys)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pth"):
        load_imagenet_weights(ResNetEncoder(), garbage)


@pytest.mark.parametrize(("batch", "height", "width"), [(1, 64, 64), (2, 64, 96), (1, 96, 128), (3, 128, 64)])
def test_output_shapes_at_several_sizes(batch, height, width):
    net = GamDepthNet().eval()
    with torch.no_grad():
        disparity, logits = net(torch.rand(batch, 3, height, width))
    assert disparity.shape == (batch, 1, height, width)
    assert logits.shape == (batch, 40, height, width)
    assert float(disparity.min()) > 0 and float(disparity.max()) < 1  # sigmoid


def test_multiscale_depth_for_training():
    net = GamDepthNet(depth_scales=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        disparities, logits = net.forward_multiscale(torch.rand(2, 3, 64, 96))
    assert [tuple(d.shape) for d in disparities] == [(2, 1, 64 // 2**s, 96 // 2**s) for s in range(4)]
    assert logits.shape == (2, 40, 64, 96)


def test_bad_input_sizes_are_rejected():
    net = GamDepthNet()
    with pytest.raises(ValueError, match="multiple of 32"):
        net(torch.rand(1, 3, 60, 96))
    with pytest.raises(ValueError, match="at least 64"):
        net(torch.rand(1, 3, 32, 96))
    with pytest.raises(ValueError, match=r"\[B,3,H,W\]"):
        net(torch.rand(1, 4, 64, 96))
    with pytest.raises(ValueError, match="scales"):
        UNetDecoder((64, 64, 128, 256, 512), 1, scales=(4,))


def test_normalisation_is_inside_the_network():
    encoder = ResNetEncoder().eval()
    mean_image = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).expand(1, 3, 64, 64)
    with torch.no_grad():
        features = encoder(mean_image)
    # A constant mean-coloured image normalises to zero; with zero conv bias the stem output is BN beta = 0.
    assert torch.allclose(features[0], torch.zeros_like(features[0]), atol=1e-6)


def test_disparity_to_depth_range():
    disparity = torch.tensor([0.0, 1.0, 0.5])
    depth = disparity_to_depth(disparity, 0.1, 10.0)
    torch.testing.assert_close(depth[:2], torch.tensor([10.0, 0.1]))
    assert 0.1 < float(depth[2]) < 10.0


def test_fast_decoder_variant_has_the_same_weights_and_exports(tmp_path):
    from gam_depth_ros.checkpoint import save_checkpoint
    from gam_depth_ros.export import export_checkpoint
    from gam_depth_ros.model_config import ModelConfig

    paper = GamDepthNet()
    fast = GamDepthNet(decoder_padding="zero", decoder_activation="relu")
    assert {k: v.shape for k, v in paper.state_dict().items()} == {k: v.shape for k, v in fast.state_dict().items()}
    fast.load_state_dict(paper.state_dict())
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(paper.eval()(image)[0], fast.eval()(image)[0])  # a different function
    config = ModelConfig(height=64, width=96, decoder_padding="zero", decoder_activation="relu")
    checkpoint = save_checkpoint(tmp_path / "fast.pt", fast.state_dict(), config)
    metadata, report = export_checkpoint(checkpoint, tmp_path / "fast.onnx")
    assert report.ok
    import onnx

    ops = {node.op_type for node in onnx.load(str(tmp_path / "fast.onnx")).graph.node}
    assert "Pad" not in ops and "Elu" not in ops and "Relu" in ops
    with pytest.raises(ValueError, match="decoder_padding"):
        ModelConfig(decoder_padding="circular")


def test_compact_variant_has_a_quarter_of_the_parameters_and_scaled_channels():
    paper, compact = GamDepthNet(), GamDepthNet(base_channels=32)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert compact.encoder.channels == (32, 32, 64, 128, 256)
    assert 0.2 < count(compact) / count(paper) < 0.3
    disparity, logits = compact.eval()(torch.rand(2, 3, 64, 96))
    assert disparity.shape == (2, 1, 64, 96) and logits.shape == (2, 40, 64, 96)
    with pytest.raises(ValueError, match="multiple of 16"):
        ModelConfig(base_channels=40)
