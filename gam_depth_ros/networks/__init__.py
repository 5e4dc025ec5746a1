"""Networks of GAM-Depth: ResNet encoder, U-Net decoders and the depth+semantics model."""

from gam_depth_ros.networks.decoder import UNetDecoder
from gam_depth_ros.networks.gam_depth import GamDepthNet
from gam_depth_ros.networks.resnet import ResNetEncoder

__all__ = ["GamDepthNet", "ResNetEncoder", "UNetDecoder"]
