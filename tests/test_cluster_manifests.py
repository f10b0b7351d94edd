"""The files under cluster/ agree with the code, checked offline (no Ray runtime, no cloud).

* every YAML parses; the launcher file validates against the schema Ray ships (and Ray's own
  config check); KubeRay objects have the fields KubeRay needs;
* the Ray version of every image tag and ``rayVersion`` lies in pyproject.toml's Ray range and
  has the installed Ray's major.minor;
* every entrypoint ``python pipelines/X.py --flag ...`` (RayJobs and cluster/README.md) names an
  existing script and only flags that script accepts, read from its Typer app; config files it
  names exist and its ``--set`` overrides load;
* no credential is written inline anywhere under cluster/.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
CLUSTER = REPO / "cluster"
LAUNCHER = CLUSTER / "aws" / "cluster.yaml"
KUBERAY = CLUSTER / "kuberay"
README = CLUSTER / "README.md"
YAML_FILES = sorted(p for p in CLUSTER.rglob("*") if p.suffix in (".yaml", ".yml"))
RAY_IMAGE = re.compile(r"^rayproject/ray:(?P<version>\d+\.\d+\.\d+)(?:-py(?P<py>3\d+))?(?:-\w+)?$")
PIPELINES = ("preprocess", "train", "tune", "refine")
# Options whose values are data locations: a job on a cluster reads and writes object storage.
LOCATION_OPTIONS = {"--input", "--output", "--data", "--checkpoint", "--source", "--resume"}


# ---------------------------------------------------------------------------------------------
# Helpers (also used by the negative tests)


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def requirement(name: str) -> Requirement:
    for spec in pyproject()["project"]["dependencies"]:
        req = Requirement(spec)
        if req.name == name:
            return req
    raise AssertionError(f"{name} is not a dependency in pyproject.toml")


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def check_ray_image(image: str) -> list[str]:
    """Problems with a container image: it must be rayproject/ray at a pinned version inside
    pyproject's range, with the installed Ray's major.minor and a Python the project supports."""
    match = RAY_IMAGE.match(image)
    if not match:
        return [f"{image}: not a rayproject/ray image with an exact version tag"]
    return check_ray_version(match["version"], image, match["py"])


def check_ray_version(version: str, where: str, py: str | None = None) -> list[str]:
    import ray

    problems = []
    pin = requirement("ray").specifier
    if not pin.contains(Version(version)):
        problems.append(f"{where}: Ray {version} is outside pyproject's ray{pin}")
    if Version(version).release[:2] != Version(ray.__version__).release[:2]:
        problems.append(f"{where}: Ray {version} is not the installed Ray {ray.__version__}")
    if py is not None:
        python = f"{py[0]}.{py[1:]}"
        floor = pyproject()["project"]["requires-python"]
        if not Requirement(f"python{floor}").specifier.contains(python):
            problems.append(f"{where}: Python {python} is outside requires-python {floor}")
    return problems


@functools.cache
def pipeline_options(script: str) -> dict[str, Any]:
    """``{flag: param}`` for every option of ``pipelines/<script>.py``, from its Typer app."""
    import typer.main

    path = REPO / "pipelines" / f"{script}.py"
    spec = importlib.util.spec_from_file_location(f"_cluster_check_{script}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    command = typer.main.get_command(module.app)
    options: dict[str, Any] = {}
    for param in command.params:
        if getattr(param, "param_type_name", "option") != "option":
            options.setdefault("<arguments>", []).append(param)
            continue
        for flag in [*param.opts, *param.secondary_opts]:
            options[flag] = param
    return options


def parse_entrypoint(entrypoint: str) -> tuple[str | None, list[tuple[str, str | None]], list[str]]:
    """``(script, [(flag, value)], problems)`` for ``python pipelines/X.py --flag value ...``."""
    try:
        tokens = shlex.split(entrypoint)
    except ValueError as err:
        return None, [], [f"{entrypoint!r}: {err}"]
    if len(tokens) < 2 or tokens[0] not in ("python", "python3"):
        return None, [], [f"{entrypoint!r}: expected `python pipelines/<name>.py ...`"]
    match = re.fullmatch(r"pipelines/(\w+)\.py", tokens[1])
    if not match:
        return None, [], [f"{entrypoint!r}: {tokens[1]} is not a script under pipelines/"]
    script = match[1]
    if not (REPO / "pipelines" / f"{script}.py").is_file():
        return script, [], [f"{entrypoint!r}: pipelines/{script}.py does not exist"]
    options = pipeline_options(script)
    pairs: list[tuple[str, str | None]] = []
    problems: list[str] = []
    rest = tokens[2:]
    i = 0
    while i < len(rest):
        token = rest[i]
        i += 1
        if not token.startswith("--"):
            if "<arguments>" not in options:
                problems.append(f"{script}: unexpected argument {token!r}")
            continue
        flag, eq, inline = token.partition("=")
        param = options.get(flag)
        if param is None:
            problems.append(f"{script}: unknown flag {flag} (accepts {sorted(options)})")
            continue
        if param.is_flag:
            if eq:
                problems.append(f"{script}: {flag} takes no value")
            pairs.append((flag, None))
            continue
        if eq:
            pairs.append((flag, inline))
        elif i < len(rest) and not rest[i].startswith("--"):
            pairs.append((flag, rest[i]))
            i += 1
        else:
            problems.append(f"{script}: {flag} needs a value")
    return script, pairs, problems


def check_entrypoint(entrypoint: str) -> list[str]:
    """Everything wrong with one entrypoint; empty when it would start."""
    script, pairs, problems = parse_entrypoint(entrypoint)
    if problems or script is None:
        return problems
    options = pipeline_options(script)
    for flag, value in pairs:
        default = options[flag].default
        # Path-typed options (config files) are read from the job's working dir: the repo.
        if isinstance(default, Path) and value and "://" not in value:
            if not (REPO / value).is_file():
                problems.append(f"{script}: {flag} {value} does not exist in the repository")
    overrides = [value for flag, value in pairs if flag == "--set"]
    if overrides and "--config" in options:
        from hanet.config import ConfigError, load_config

        config = next((v for f, v in pairs if f == "--config"), None)
        path = REPO / config if config else options["--config"].default
        if path.is_file():
            try:
                load_config(path, overrides)
            except ConfigError as err:
                problems.append(f"{script}: --set {overrides}: {err}")
    return problems


SECRET_PATTERNS = [
    (re.compile(r"aws_secret_access_key"), "an aws_secret_access_key literal"),
    (
        re.compile(r"AWS_SECRET_ACCESS_KEY\s*[:=]\s*[\"']?[A-Za-z0-9/+]{16,}"),
        "an AWS_SECRET_ACCESS_KEY value",
    ),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"RAY_AUTH_TOKEN\s*[:=]\s*[\"']?[A-Za-z0-9_\-]{16,}"), "a Ray auth token"),
]
SENSITIVE_ENV = re.compile(r"SECRET|TOKEN|PASSWORD|ACCESS_KEY|CREDENTIAL", re.IGNORECASE)


def find_secrets(text: str, where: str) -> list[str]:
    return [
        f"{where}:{text.count(chr(10), 0, m.start()) + 1}: {what}"
        for pattern, what in SECRET_PATTERNS
        for m in pattern.finditer(text)
    ]


def walk(node: Any):
    """Every mapping inside a parsed YAML document."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def pod_templates(cluster_spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    groups = [("head", cluster_spec["headGroupSpec"])]
    groups += [(g["groupName"], g) for g in cluster_spec.get("workerGroupSpecs", [])]
    return [(name, group["template"]["spec"]) for name, group in groups]


def gpus_per_pod(pod: dict[str, Any]) -> int:
    return sum(
        int(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))
        for c in pod["containers"]
    )


def runtime_env_packages(runtime_env: dict[str, Any]) -> list[Requirement]:
    pip = runtime_env.get("pip", [])
    packages = pip.get("packages", []) if isinstance(pip, dict) else pip
    return [Requirement(p) for p in packages]


def check_dependencies(packages: list[Requirement], where: str) -> list[str]:
    """The runtime env installs what pyproject.toml needs (Ray comes from the image), at
    versions pyproject allows."""
    problems = []
    by_name = {p.name.lower(): p for p in packages}
    if "ray" in by_name:
        problems.append(f"{where}: installs ray; the image provides the pinned Ray")
    for spec in pyproject()["project"]["dependencies"]:
        req = Requirement(spec)
        if req.name == "ray":
            continue
        got = by_name.get(req.name.lower())
        if got is None:
            problems.append(f"{where}: pip list lacks {req.name} (pyproject: {spec})")
            continue
        for pin in got.specifier:
            if pin.operator == "==" and not req.specifier.contains(pin.version):
                problems.append(f"{where}: {got} is outside pyproject's {spec}")
    return problems


def extras_packages(requirements: list[Requirement]) -> set[str]:
    """What the declared extras bring (``ray[serve]`` brings fastapi and starlette)."""
    import importlib.metadata

    found = set()
    for req in requirements:
        for line in importlib.metadata.requires(req.name) or []:
            dep = Requirement(line)
            if dep.marker and any(dep.marker.evaluate({"extra": e}) for e in req.extras):
                found.add(dep.name.lower())
    return found


def kuberay_documents() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, doc) for p in sorted(KUBERAY.glob("*.yaml")) for doc in load_all(p)]


def rayjobs() -> dict[str, dict[str, Any]]:
    return {
        doc["metadata"]["name"]: doc for _, doc in kuberay_documents() if doc["kind"] == "RayJob"
    }


def readme_commands() -> list[str]:
    """Every command line in cluster/README.md's code blocks, continuations joined."""
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", README.read_text(), flags=re.S):
        lines += re.sub(r"\\\n\s*", " ", block).splitlines()
    return lines


def readme_entrypoints(submitted_only: bool = False) -> list[str]:
    """The ``python pipelines/...`` part of the README's commands."""
    found = []
    for line in readme_commands():
        match = re.search(r"(python3? pipelines/\S+.*)$", line)
        if match and (not submitted_only or "ray job submit" in line):
            found.append(match[1].strip())
    return found


# ---------------------------------------------------------------------------------------------
# Every file


def test_cluster_files_exist() -> None:
    assert LAUNCHER.is_file()
    assert README.is_file()
    assert (KUBERAY / "raycluster.yaml").is_file()
    for name in PIPELINES:
        assert (KUBERAY / f"rayjob-{name}.yaml").is_file()


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(CLUSTER)))
def test_yaml_parses(path: Path) -> None:
    docs = load_all(path)
    assert docs and all(isinstance(doc, dict) for doc in docs)


@pytest.mark.parametrize(
    "path",
    sorted(p for p in CLUSTER.rglob("*") if p.is_file()),
    ids=lambda p: str(p.relative_to(CLUSTER)),
)
def test_no_inline_secrets(path: Path) -> None:
    assert find_secrets(path.read_text(), str(path.relative_to(REPO))) == []


def test_no_inline_secrets_in_kubernetes_objects() -> None:
    for path, doc in kuberay_documents():
        assert doc["kind"] != "Secret", f"{path}: Secrets are referenced, never committed"
        for node in walk(doc):
            if "name" in node and ("value" in node or "valueFrom" in node):
                if SENSITIVE_ENV.search(str(node["name"])):
                    assert "value" not in node, f"{path}: {node['name']} set inline"
        if doc["kind"] == "RayJob":
            env_vars = yaml.safe_load(doc["spec"]["runtimeEnvYAML"]).get("env_vars", {})
            inline = [k for k in env_vars if SENSITIVE_ENV.search(k)]
            assert not inline, f"{path}: runtime env carries {inline}"


def test_ray_versions_match_pyproject() -> None:
    seen = set()
    launcher = yaml.safe_load(LAUNCHER.read_text())
    for key in ("image", "head_image", "worker_image"):
        if key in launcher["docker"]:
            assert check_ray_image(launcher["docker"][key]) == []
            seen.add(RAY_IMAGE.match(launcher["docker"][key])["version"])
    for name, cluster in cluster_specs():
        assert check_ray_version(cluster["rayVersion"], f"{name} rayVersion") == []
        seen.add(cluster["rayVersion"])
        for group, pod in pod_templates(cluster):
            for container in pod["containers"]:
                assert check_ray_image(container["image"]) == [], f"{name} {group}"
                assert RAY_IMAGE.match(container["image"])["version"] == cluster["rayVersion"]
    assert len(seen) == 1, f"cluster files use several Ray versions: {sorted(seen)}"


# ---------------------------------------------------------------------------------------------
# Ray cluster launcher (AWS)


def launcher_config() -> dict[str, Any]:
    return yaml.safe_load(LAUNCHER.read_text())


def test_launcher_validates_against_ray_schema() -> None:
    import jsonschema
    import ray.autoscaler

    schema_path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    jsonschema.validate(launcher_config(), json.loads(schema_path.read_text()))


def test_launcher_passes_rays_own_config_check() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(launcher_config()))


def test_launcher_fields() -> None:
    config = launcher_config()
    for key in ("cluster_name", "max_workers", "idle_timeout_minutes", "head_node_type"):
        assert key in config, key
    provider = config["provider"]
    assert provider["type"] == "aws"
    for key in ("region", "availability_zone", "cache_stopped_nodes"):
        assert key in provider, key
    assert config["auth"]["ssh_user"]
    assert "ssh_private_key" not in config["auth"], "let the launcher manage its key pair"

    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0, "the head is a CPU node"
    gpu_groups = [t for name, t in types.items() if t["resources"].get("GPU", 0) > 0]
    assert gpu_groups, "no GPU worker group"
    for group in gpu_groups:
        assert group["min_workers"] == 0 < group["max_workers"], "GPU workers autoscale from 0"
    assert sum(t.get("max_workers", 0) for t in types.values()) >= config["max_workers"] > 0
    for name, node_type in types.items():
        profile = node_type["node_config"].get("IamInstanceProfile", {})
        assert profile.get("Arn") or profile.get("Name"), f"{name}: no IAM instance profile"


def test_launcher_installs_the_project_and_enables_token_auth() -> None:
    config = launcher_config()
    mounts = config["file_mounts"]
    project_dirs = [remote for remote, local in mounts.items() if local in (".", "./")]
    assert project_dirs, "the repository is not mounted on the nodes"
    setup = " ; ".join(config["setup_commands"])
    assert any(f"pip install --quiet -e {d}" in setup for d in project_dirs)
    torch = re.search(r"torch==([\w.]+)", setup)
    assert torch and requirement("torch").specifier.contains(torch[1])
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in config[key] if "ray start" in c]
        assert starts and all("RAY_AUTH_MODE=token" in c for c in starts), key


def test_pyproject_declares_every_import_of_the_job_code() -> None:
    """The launcher installs the project from pyproject.toml (and the RayJobs mirror its list),
    so every third-party module that hanet/ and pipelines/ import must be declared there."""
    import ast
    import importlib.metadata
    import sys

    modules = set()
    local = {path.stem for path in (REPO / "pipelines").glob("*.py")}  # the scripts' siblings
    for path in [*(REPO / "pipelines").glob("*.py"), *(REPO / "hanet").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    requirements = [Requirement(s) for s in pyproject()["project"]["dependencies"]]
    declared = {req.name.lower() for req in requirements} | extras_packages(requirements)
    distributions = importlib.metadata.packages_distributions()
    missing = sorted(
        f"{module} (pip: {', '.join(distributions.get(module, ['?']))})"
        for module in modules - set(sys.stdlib_module_names) - {"hanet"} - local
        if not {d.lower() for d in distributions.get(module, [module])} & declared
    )
    assert missing == [], f"imported but not in pyproject.toml dependencies: {missing}"


# ---------------------------------------------------------------------------------------------
# KubeRay


def test_kuberay_objects() -> None:
    kinds = {}
    for path, doc in kuberay_documents():
        kinds.setdefault(doc["kind"], []).append(path.name)
        assert doc["metadata"]["name"]
        if doc["kind"] in ("RayCluster", "RayJob", "RayService"):
            assert doc["apiVersion"] == "ray.io/v1", path
    assert kinds.get("RayCluster") == ["raycluster.yaml"]
    assert "ServiceAccount" in kinds


def cluster_specs() -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for path, doc in kuberay_documents():
        if doc["kind"] == "RayCluster":
            specs.append((path.name, doc["spec"]))
        elif doc["kind"] == "RayJob":
            specs.append((path.name, doc["spec"]["rayClusterSpec"]))
        elif doc["kind"] == "RayService":
            specs.append((path.name, doc["spec"]["rayClusterConfig"]))
    return specs


@pytest.mark.parametrize("name,spec", cluster_specs(), ids=[n for n, _ in cluster_specs()])
def test_kuberay_cluster_spec(name: str, spec: dict[str, Any]) -> None:
    service_accounts = {
        doc["metadata"]["name"]: doc
        for _, doc in kuberay_documents()
        if doc["kind"] == "ServiceAccount"
    }
    assert spec["authOptions"]["mode"] == "token", "token auth on the cluster side"
    head = spec["headGroupSpec"]
    assert "rayStartParams" in head
    assert gpus_per_pod(head["template"]["spec"]) == 0, "the head is a CPU pod"
    for group in spec["workerGroupSpecs"]:
        assert group["groupName"]
        assert "rayStartParams" in group
        low, count, high = group["minReplicas"], group["replicas"], group["maxReplicas"]
        assert 0 <= low <= count <= high and high > 0, group["groupName"]
    for group_name, pod in pod_templates(spec):
        account = pod.get("serviceAccountName")
        assert account in service_accounts, f"{group_name}: no IRSA service account"
        annotations = service_accounts[account]["metadata"].get("annotations", {})
        assert "eks.amazonaws.com/role-arn" in annotations
        for container in pod["containers"]:
            for source in container.get("envFrom", []):
                assert set(source) <= {"secretRef", "configMapRef", "prefix"}
            limits = container.get("resources", {}).get("limits", {})
            assert "cpu" in limits and "memory" in limits, f"{group_name}: no limits"
    if name == "raycluster.yaml":
        assert any(gpus_per_pod(pod) > 0 for _, pod in pod_templates(spec)), "no GPU group"


def test_rayjobs_cover_every_pipeline() -> None:
    scripts = {parse_entrypoint(job["spec"]["entrypoint"])[0] for job in rayjobs().values()}
    assert scripts == set(PIPELINES)


@pytest.mark.parametrize("name", PIPELINES)
def test_rayjob(name: str) -> None:
    path = KUBERAY / f"rayjob-{name}.yaml"
    (job,) = load_all(path)
    spec = job["spec"]
    assert job["kind"] == "RayJob"
    assert spec["shutdownAfterJobFinishes"] is True
    assert isinstance(spec["ttlSecondsAfterFinished"], int) and spec["ttlSecondsAfterFinished"] >= 0
    assert isinstance(spec["activeDeadlineSeconds"], int) and spec["activeDeadlineSeconds"] > 0
    assert isinstance(spec["backoffLimit"], int) and spec["backoffLimit"] >= 0
    assert spec["submissionMode"] in ("K8sJobMode", "HTTPMode", "SidecarMode")
    assert "clusterSelector" not in spec, "each RayJob brings (and deletes) its own cluster"

    entrypoint = spec["entrypoint"]
    assert check_entrypoint(entrypoint) == []
    script, pairs, _ = parse_entrypoint(entrypoint)
    assert script == name
    for flag, value in pairs:
        if flag in LOCATION_OPTIONS:
            assert value.startswith("s3://"), f"{flag} {value}: cluster jobs use s3:// URIs"

    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert str(runtime_env["working_dir"]).startswith("s3://")
    assert runtime_env["working_dir"].endswith(".zip")
    assert check_dependencies(runtime_env_packages(runtime_env), path.name) == []

    # `--workers N --gpu` needs N GPUs; Train starts only once all N workers are placed.
    flags = dict(pairs)
    if "--gpu" in flags and "--workers" in flags:
        workers = int(flags["--workers"])
        groups = spec["rayClusterSpec"]["workerGroupSpecs"]
        most = sum(g["maxReplicas"] * gpus_per_pod(g["template"]["spec"]) for g in groups)
        assert most >= workers, f"--workers {workers} but at most {most} GPUs"
        if name == "train":
            fixed = sum(g["minReplicas"] * gpus_per_pod(g["template"]["spec"]) for g in groups)
            assert fixed >= workers, f"--workers {workers} but only {fixed} GPUs guaranteed"


def test_rayservice_deploys_the_live_app() -> None:
    """The RayService's Serve config passes Ray's own schema, names the real builder with the
    arguments it takes and valid overrides, and installs what the code needs."""
    import importlib

    from ray.serve.schema import ServeDeploySchema

    from hanet.config import Config
    from hanet.live.service import BUILDER_ARGS

    (service,) = [doc for _, doc in kuberay_documents() if doc["kind"] == "RayService"]
    spec = service["spec"]
    serve_config = yaml.safe_load(spec["serveConfigV2"])
    ServeDeploySchema(**serve_config)
    assert serve_config["http_options"]["host"] == "0.0.0.0"
    (app,) = serve_config["applications"]
    module, name = app["import_path"].split(":")
    assert callable(getattr(importlib.import_module(module), name))
    args = app["args"]
    assert set(args) <= set(BUILDER_ARGS) and args["checkpoint"].startswith("s3://")
    Config().replace(args.get("set", []))  # ConfigError for an unknown key or a bad value
    runtime_env = app["runtime_env"]
    assert str(runtime_env["working_dir"]).startswith("s3://")
    assert check_dependencies(runtime_env_packages(runtime_env), "rayservice") == []
    if args.get("gpu"):
        groups = spec["rayClusterConfig"]["workerGroupSpecs"]
        fixed = sum(g["minReplicas"] * gpus_per_pod(g["template"]["spec"]) for g in groups)
        assert fixed >= int(args["replicas"]), "a GPU per replica"


# ---------------------------------------------------------------------------------------------
# README


def test_readme_documents_every_setup() -> None:
    text = README.read_text()
    for path in [LAUNCHER, *sorted(KUBERAY.glob("*.yaml"))]:
        assert str(path.relative_to(REPO)) in text, f"README does not mention {path.name}"
    for needle in ("RAY_AUTH_MODE", "AWS_ENDPOINT_URL_S3", "IRSA", "instance profile"):
        assert needle in text, needle
    submitted = {parse_entrypoint(c)[0] for c in readme_entrypoints(submitted_only=True)}
    assert set(PIPELINES) | {"evaluate"} <= submitted
    assert re.search(r"ray job submit --address http://\S+:8265 --working-dir \.", text)


def test_readme_entrypoints_match_the_code() -> None:
    commands = readme_entrypoints()
    assert commands
    problems = [p for command in commands for p in check_entrypoint(command)]
    assert problems == []


def test_readme_runtime_env_installs_the_dependencies() -> None:
    match = re.search(r"RUNTIME_ENV='(\{.*?\})'", README.read_text(), flags=re.S)
    assert match, "README defines no RUNTIME_ENV for a KubeRay cluster"
    runtime_env = json.loads(match[1])
    assert check_dependencies(runtime_env_packages(runtime_env), "README RUNTIME_ENV") == []


# ---------------------------------------------------------------------------------------------
# The checkers themselves catch what they are for


def test_checker_rejects_a_missing_script() -> None:
    problems = check_entrypoint("python pipelines/distill.py --output s3://b/x")
    assert problems and "does not exist" in problems[0]


def test_checker_rejects_an_unknown_flag() -> None:
    problems = check_entrypoint("python pipelines/train.py --epochs 3 --output s3://b/run")
    assert any("unknown flag --epochs" in p for p in problems), problems


def test_checker_rejects_bad_values() -> None:
    assert check_entrypoint("python pipelines/train.py --workers")  # value missing
    assert check_entrypoint("python pipelines/train.py --gpu=yes")  # flag with a value
    assert check_entrypoint("python pipelines/train.py --config configs/nope.yaml")
    assert check_entrypoint("python pipelines/train.py --set train.epoch=3")  # no such key
    assert check_entrypoint("python train.py --workers 2")  # not under pipelines/
    assert check_entrypoint("python pipelines/train.py --workers 2 --gpu") == []


def test_checker_rejects_foreign_ray_versions() -> None:
    assert check_ray_image("rayproject/ray:2.59.1-py311-gpu")
    assert check_ray_image("rayproject/ray:latest-gpu")
    assert check_ray_image("rayproject/ray:2.60.0-py39-cpu")  # Python below requires-python
    assert check_ray_version("2.61.0", "x")
    assert check_ray_image("rayproject/ray:2.60.0-py311-gpu") == []


def test_checker_finds_inline_secrets() -> None:
    fake_key = "AKIA" + "ABCDEFGHIJKLMNOP"
    fake_secret = "wJalrXUtnFEMI" + "K7MDENGbPxRfiCYEXAMPLEKEY"
    assert find_secrets(f"env:\n  AWS_ACCESS_KEY_ID: {fake_key}\n", "x")
    assert find_secrets(f"AWS_SECRET_ACCESS_KEY={fake_secret}", "x")
    assert find_secrets("[default]\naws_secret_access_key = abc\n", "x")
    assert find_secrets("envFrom:\n  - secretRef: {name: hanet-s3}\n", "x") == []
    assert check_dependencies([Requirement("torch==2.13.0")], "x")  # the rest missing
