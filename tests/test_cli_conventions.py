"""The conventions users expect of a command line, each run through the real entry point
(``python -m eks_async ...`` in a subprocess) against the emulator served from a thread:
global options after the command, ``--version``, errors that name flags, Ctrl-C and SIGTERM
during a wait (the id and the command that resumes it), ``--output json|table|yaml``,
``--debug``, and no secret on stdout or stderr.

Nothing here waits a fixed time: the interrupt tests read stderr until the first progress
line, and the emulator runs on a ManualClock the test moves by hand.
"""

from __future__ import annotations

import json
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import yaml

from eks_async import __version__
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    Delays,
    EKSEmulator,
    Fault,
    ManualClock,
    run_emulator_server,
)

from ._emulator_process import HANG_GUARD, child_env

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
ADMIN = f"arn:aws:iam::{ACCOUNT}:user/{TEST_ACCESS_KEY_ID}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/payments-api"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/ci/deployer"
DEPLOYER_KEY, DEPLOYER_SECRET = "AKIDDEPLOYER", "deployer-secret-value"
SIGN = {"AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY}
CREATE_DELAY = 60.0
PROGRAM = [sys.executable, "-m", "eks_async"]


@attrs.define
class Served:
    emulator: EKSEmulator
    clock: ManualClock
    url: str

    @property
    def base(self) -> list[str]:
        return ["--region", "us-west-2", "--endpoint-url", self.url]


@pytest.fixture
def served() -> Iterator[Served]:
    clock = ManualClock()
    delays = attrs.evolve(
        Delays.none(), association_create=CREATE_DELAY, access_entry_create=CREATE_DELAY
    )
    emulator = EKSEmulator(seed=11, clock=clock, delays=delays)
    emulator.add_cluster("prod", authentication_mode="API", admin_principal=ADMIN)
    emulator.register_credentials(
        DEPLOYER_KEY, DEPLOYER_SECRET, arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci"
    )
    with run_emulator_server(emulator) as srv:
        yield Served(emulator, clock, srv.url)


def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PROGRAM, *argv], env=env or child_env(SIGN), cwd=ROOT, capture_output=True,
        text=True, timeout=HANG_GUARD,
    )


class Running:
    """A command running in the background; its stderr read line by line."""

    def __init__(self, *argv: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [*PROGRAM, *argv], env=env or child_env(SIGN), cwd=ROOT, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str) -> None:
        """Read stderr until a line holds ``text`` (the wait is under way)."""
        while not any(text in line for line in self.seen):
            line = self.lines.get(timeout=HANG_GUARD)
            if line is None:
                raise AssertionError(f"stderr ended before {text!r}: {self.seen}")
            self.seen.append(line)

    def stop(self, sig: int) -> tuple[int, str, str]:
        self.process.send_signal(sig)
        self.process.wait(timeout=HANG_GUARD)  # stdout holds a few lines: no pipe fills up
        assert self.process.stdout is not None
        out = self.process.stdout.read()
        self.process.stdout.close()
        while (line := self.lines.get(timeout=HANG_GUARD)) is not None:
            self.seen.append(line)
        return self.process.returncode, out, "".join(self.seen)


def _resume_line(err: str) -> list[str]:
    lines = err.splitlines()
    index = next(i for i, line in enumerate(lines) if "resume the wait with:" in line)
    return shlex.split(lines[index + 1])


def _after_program(command: list[str]) -> list[str]:
    """The resume command's arguments: all after the program (the first global flag on)."""
    return command[command.index("--region"):]


def test_global_options_are_accepted_after_the_command(served: Served) -> None:
    result = cli("pod-identity", "list", "--cluster-name", "prod", "--output", "table",
                 "--region", "us-west-2", "--endpoint-url", served.url)
    assert result.returncode == 0, result.stderr
    assert "associations" in result.stdout and not result.stdout.lstrip().startswith("{")
    # Before and after mixed; the one after the command wins for the same flag.
    result = cli("--region", "eu-west-1", "--output", "table", "access-entry", "list",
                 "--cluster-name", "prod", "--output", "yaml", "--region", "us-west-2",
                 "--endpoint-url", served.url)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == {"accessEntries": [ADMIN]}
    # --profile after the command is read (this profile does not exist).
    result = cli("access-entry", "list", "--cluster-name", "prod", *served.base,
                 "--profile", "no-such-profile-here")
    assert result.returncode == 1 and "no-such-profile-here" in result.stderr
    # --debug after the command routes eks_async's DEBUG lines to stderr.
    served.emulator.script("ListAccessEntries", Fault.THROTTLE)
    result = cli("access-entry", "list", "--cluster-name", "prod", *served.base, "--debug")
    assert result.returncode == 0, result.stderr
    assert re.search(r"DEBUG eks_async\S*: ListAccessEntries: attempt 1 failed", result.stderr)
    assert json.loads(result.stdout) == {"accessEntries": [ADMIN]}


def test_version() -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"eks-async {__version__} ")


def test_errors_name_flags_not_python_parameters(served: Served) -> None:
    env = child_env(SIGN)
    checks = [
        # The client's own ParamValidationError, its parameter named by its flag.
        (["pod-identity", "describe", "--cluster-name", "", "--association-id", "a-1"],
         "argument --cluster-name: ", ("cluster_name", "clusterName")),
        (["update", "describe", "--cluster-name", "", "--update-id", "u-1"],
         "argument --cluster-name: ", ("parameter name",)),
        (["access-entry", "create", "--cluster-name", "prod", "--principal-arn", DEPLOYER,
          "--tag", "=v"], "argument --tag: ", ("tags",)),
        (["access-entry", "associate-policy", "--cluster-name", "prod", "--principal-arn",
          DEPLOYER, "--policy-arn", "p", "--access-scope-type", "cluster", "--namespace", "a"],
         "argument --namespace: ", ("namespaces", "access_scope")),
    ]
    for argv, expected, never in checks:
        result = cli(*served.base, *argv, env=env)
        assert result.returncode == 2, (argv, result.stderr)
        assert expected in result.stderr, (argv, result.stderr)
        assert not any(word in result.stderr for word in never), (argv, result.stderr)
        assert "Traceback" not in result.stderr
    # No region anywhere: the message names the flag, not the client's keyword.
    bare = {k: v for k, v in env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    bare["AWS_CONFIG_FILE"] = bare["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
    result = cli("pod-identity", "list", "--cluster-name", "prod", env=bare)
    assert result.returncode == 1
    assert "--region" in result.stderr and "region=" not in result.stderr


def test_ctrl_c_during_a_wait_prints_the_id_and_the_command_that_resumes_it(
    served: Served,
) -> None:
    running = Running(*served.base, "pod-identity", "create", "--cluster-name", "prod",
                      "--namespace", "default", "--service-account", "default",
                      "--role-arn", ROLE, "--wait")
    running.wait_for("pod_identity_association_visible: not found")  # the wait is under way
    code, out, err = running.stop(signal.SIGINT)
    assert code == 130, err
    assert "Traceback" not in err
    # The association was created: its output (with the id) on stdout, as without Ctrl-C.
    assoc_id = json.loads(out)["association"]["associationId"]
    assert f"association {assoc_id} in cluster prod was created" in err
    resume = _resume_line(err)
    assert _after_program(resume) == [
        *served.base, "pod-identity", "wait", "--cluster-name", "prod",
        "--association-id", assoc_id,
    ]
    # The resume command works as printed, once EKS shows the association.
    served.emulator.advance(CREATE_DELAY)
    result = cli(*_after_program(resume))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["association"]["associationId"] == assoc_id
    assert "pod_identity_association_visible: visible" in result.stderr


def test_sigterm_during_a_wait_exits_143_after_closing_the_client(served: Served) -> None:
    deployer = child_env(
        {"AWS_ACCESS_KEY_ID": DEPLOYER_KEY, "AWS_SECRET_ACCESS_KEY": DEPLOYER_SECRET}
    )
    running = Running(*served.base, "access-entry", "create", "--cluster-name", "prod",
                      "--principal-arn", DEPLOYER, "--wait", env=deployer)
    running.wait_for("access_entry_effective: Unauthorized (401)")
    code, out, err = running.stop(signal.SIGTERM)
    assert code == 143, err
    assert "terminated (SIGTERM); the client is closed" in err
    assert "Traceback" not in err
    assert json.loads(out)["accessEntry"]["principalArn"] == DEPLOYER
    assert _after_program(_resume_line(err)) == [
        *served.base, "access-entry", "wait", "--cluster-name", "prod",
        "--principal-arn", DEPLOYER,
    ]


def test_every_read_command_prints_json_table_or_yaml(served: Served) -> None:
    served.emulator.settle()
    created = cli(*served.base, "pod-identity", "create", "--cluster-name", "prod",
                  "--namespace", "default", "--service-account", "default", "--role-arn", ROLE)
    assoc_id = json.loads(created.stdout)["association"]["associationId"]
    served.emulator.settle()
    idp = json.loads(cli(*served.base, "idp", "associate", "--cluster-name", "prod", "--name",
                         "okta", "--issuer-url", "https://example.okta.com", "--client-id",
                         "k8s").stdout)
    served.emulator.settle()
    reads = {
        ("pod-identity", "describe", "--association-id", assoc_id): "association",
        ("pod-identity", "list"): "associations",
        ("access-entry", "describe", "--principal-arn", ADMIN): "accessEntry",
        ("access-entry", "list"): "accessEntries",
        ("access-entry", "list-policies", "--principal-arn", ADMIN): "associatedAccessPolicies",
        ("idp", "describe", "--name", "okta"): "identityProviderConfig",
        ("idp", "list"): "identityProviderConfigs",
        ("update", "describe", "--update-id", idp["update"]["id"]): "update",
    }
    for argv, key in reads.items():
        command = [*argv[:2], "--cluster-name", "prod", *argv[2:]]
        as_yaml = cli(*served.base, *command, "--output", "yaml")
        assert as_yaml.returncode == 0, (argv, as_yaml.stderr)
        as_json = cli(*served.base, *command)
        assert yaml.safe_load(as_yaml.stdout) == json.loads(as_json.stdout), argv
        assert key in yaml.safe_load(as_yaml.stdout), argv
        as_table = cli(*served.base, *command, "--output", "table")
        assert as_table.returncode == 0 and as_table.stdout.strip(), (argv, as_table.stderr)
    no_cluster = cli(*served.base, "access-entry", "list-access-policies", "--output", "yaml")
    assert "AmazonEKSViewPolicy" in str(yaml.safe_load(no_cluster.stdout))
    call = cli(*served.base, "call", "ListClusters", "--output", "yaml")
    assert yaml.safe_load(call.stdout) == {"clusters": ["prod"]}


def test_output_yaml_without_pyyaml_says_how_to_install_it(served: Served) -> None:
    code = (
        "import sys; sys.modules['yaml'] = None\n"  # as if PyYAML were not installed
        "from eks_async._cli import entry\n"
        "sys.argv = ['eks-async', *sys.argv[1:]]\n"
        "entry()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *served.base, "access-entry", "list", "--cluster-name",
         "prod", "--output", "yaml"],
        env=child_env(SIGN), cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD,
    )
    assert result.returncode == 2
    assert "PyYAML" in result.stderr and "pip install 'eks-async[cli]'" in result.stderr
    assert result.stdout == ""
    assert served.emulator.calls("ListAccessEntries").total == 0  # refused before any call


def test_no_secret_on_stdout_or_stderr_with_session_credentials_and_debug(
    served: Served,
) -> None:
    key, secret, token = "ASIASESSIONKEY", "session-secret-d0e5f7", "session-token-FwoGZXIvY"
    served.emulator.register_credentials(key, secret, session_token=token)
    served.emulator.add_cluster("dev", admin_principal=f"arn:aws:iam::{ACCOUNT}:user/{key}")
    served.emulator.script("ListAccessEntries", Fault.THROTTLE)
    env = child_env(
        {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token}
    )
    runs = [
        cli(*served.base, "--debug", "access-entry", "list", "--cluster-name", "dev", env=env),
        cli(*served.base, "--debug", "access-entry", "describe", "--cluster-name", "dev",
            "--principal-arn", DEPLOYER, env=env),
        # A wait that makes cluster tokens from the session credentials.
        cli(*served.base, "--debug", "access-entry", "wait", "--cluster-name", "dev",
            "--principal-arn", f"arn:aws:iam::{ACCOUNT}:user/{key}", "--can-i", "list", "pods",
            env=env),
    ]
    assert [r.returncode for r in runs] == [0, 1, 0], [r.stderr for r in runs]
    assert "DEBUG" in runs[0].stderr  # the debug log was on
    for result in runs:
        for text in (result.stdout, result.stderr):
            assert secret not in text and token not in text
