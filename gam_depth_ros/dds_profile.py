"""The Fast DDS profile the launch file gives ``depth_node``: the package's, or the robot's merged with it.

The package's profile (``config/fastdds_shm.xml``) gives each participant a 32 MiB shared-memory
segment so that camera-sized images go through shared memory instead of UDP fragments. A robot
may already name a profile of its own in ``FASTDDS_DEFAULT_PROFILES_FILE`` (Fast DDS 3, ROS 2
Kilted and newer) or ``FASTRTPS_DEFAULT_PROFILES_FILE`` (Fast DDS 2, Humble and Jazzy), e.g. with
a discovery server or an interface whitelist; Fast DDS reads only one default profiles file, so
replacing it would silently drop the robot's settings. :func:`node_dds_environment` therefore

- uses the package's profile when the environment names none;
- merges the package's transports into the robot's profile when its default participant leaves
  the transports alone (a discovery server, QoS, ...), writing the merged file to a temporary
  folder;
- refuses (``ValueError`` naming the file and what to do) when the robot's profile chooses the
  transports itself (``userTransports`` or ``useBuiltinTransports``): its choice, e.g. a
  whitelist, cannot be combined with ours without changing what it means.

The result is the environment of the node's process only (launch ``additional_env``), never of
the whole launch. Plain Python: no ROS import.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from xml.etree import ElementTree

#: Fast DDS 3 (Kilted and newer) reads the first, Fast DDS 2 (Humble, Jazzy) the second.
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
_TRANSPORT_CHOICES = ("userTransports", "useBuiltinTransports")


def _local(tag: str) -> str:
    """An element's name without its XML namespace."""
    return tag.rsplit("}", 1)[-1]


def _child(element: ElementTree.Element, name: str) -> ElementTree.Element | None:
    return next((c for c in element if c.tag == name), None)


def _profiles(root: ElementTree.Element, path: str) -> ElementTree.Element:
    """The ``<profiles>`` element of a profile file (root ``<dds>`` or ``<profiles>``)."""
    profiles = root if root.tag == "profiles" else _child(root, "profiles")
    if profiles is None:
        raise ValueError(f"{path}: not a Fast DDS profiles file (no <profiles> element)")
    return profiles


def _read(path: str) -> ElementTree.Element:
    """The profile file's root with plain element names, its XML namespace kept as an ``xmlns``
    attribute (Fast DDS matches element names literally: a written ``ns0:`` prefix would hide them)."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as error:
        raise ValueError(f"{path}: cannot read the Fast DDS profile: {error}") from error
    if root.tag.startswith("{"):
        root.set("xmlns", root.tag[1:].split("}", 1)[0])
    for element in root.iter():
        element.tag = _local(element.tag)
    return root


def existing_profile(environment: dict) -> str:
    """The profile file the environment already names ("" for none).

    Raises ``ValueError`` when the two variables name different files (which one the node's Fast
    DDS would read depends on its version).
    """
    named = {environment.get(name, "").strip() for name in PROFILE_VARIABLES} - {""}
    if len(named) > 1:
        raise ValueError(
            "FASTDDS_DEFAULT_PROFILES_FILE and FASTRTPS_DEFAULT_PROFILES_FILE name different files "
            f"({' and '.join(sorted(named))}): make them the same, or set use_shm_profile:=false"
        )
    return named.pop() if named else ""


def merge_profiles(robot_path: str, package_path: str) -> ElementTree.ElementTree:
    """The robot's profile with the package's transports added to its default participant.

    Raises
    ------
    ValueError
        The robot's profile cannot be read, or its default participant chooses its transports.
    """
    robot = _read(robot_path)
    robot_profiles = _profiles(robot, robot_path)
    participants = [p for p in robot_profiles if p.tag == "participant"]
    default = next((p for p in participants if p.get("is_default_profile") == "true"), None)
    if default is not None:
        rtps = _child(default, "rtps")
        chosen = [] if rtps is None else [c.tag for c in rtps if c.tag in _TRANSPORT_CHOICES]
        if chosen:
            raise ValueError(
                f"{robot_path} (the Fast DDS profile this environment names) sets {' and '.join(chosen)} "
                "for its default participant: gam_depth_ros will not replace or combine the robot's transport "
                "choice. Set use_shm_profile:=false to run with that profile as it is (add a SHM transport "
                "with a 33554432-byte segment_size to it for camera-sized images, see config/fastdds_shm.xml), "
                "or unset the variable to use the package's profile"
            )
    package = _read(package_path)
    package_profiles = _profiles(package, package_path)
    descriptors = _child(robot_profiles, "transport_descriptors")
    if descriptors is None:  # first: Fast DDS resolves a participant's transport ids as it reads it
        descriptors = ElementTree.Element("transport_descriptors")
        robot_profiles.insert(0, descriptors)
    for descriptor in _child(package_profiles, "transport_descriptors"):
        descriptors.append(descriptor)
    (our_participant,) = [p for p in package_profiles if p.tag == "participant"]
    our_rtps = _child(our_participant, "rtps")
    if default is None:  # the robot's profile has no default participant: ours becomes it
        robot_profiles.append(our_participant)
    else:
        rtps = _child(default, "rtps")
        if rtps is None:
            rtps = ElementTree.SubElement(default, "rtps")
        for element in our_rtps:
            rtps.append(element)
    return ElementTree.ElementTree(robot)


def node_dds_environment(environment: dict, package_profile: str, folder: str | None = None) -> dict[str, str]:
    """The profile variables to set on the node's process (see the module docstring).

    ``environment`` is the launch's environment; a merged profile is written into ``folder``
    (default: a new temporary folder).
    """
    robot_profile = existing_profile(environment)
    profile = package_profile
    if robot_profile:
        merged = merge_profiles(robot_profile, package_profile)
        folder = folder or tempfile.mkdtemp(prefix="gam_depth_dds_")
        profile = str(Path(folder) / "fastdds_merged.xml")
        merged.write(profile, encoding="UTF-8", xml_declaration=True)
    return {name: profile for name in PROFILE_VARIABLES}
