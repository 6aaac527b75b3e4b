"""The generated package is what the generator makes from the pinned botocore model."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import attrs
import botocore
import pytest

from codegen.generate import AUTH_HEADER, HEADER, OUT, committed_files, render_all

BOTOCORE = Path(botocore.__file__).parent


def test_regenerating_changes_nothing() -> None:
    rendered = render_all(BOTOCORE)
    committed = committed_files()
    assert sorted(committed) == sorted(rendered), "run python -m codegen.generate"
    for name, text in rendered.items():
        assert committed[name] == text, f"{name} is stale: run python -m codegen.generate"
    # EKS Auth's package is part of the check.
    assert {
        "eks_auth/__init__.py", "eks_auth/shapes.py", "eks_auth/errors.py",
        "eks_auth/operations.py", "eks_auth/client.py", "eks_auth/endpoints.py",
        "eks_auth/models/__init__.py", "eks_auth/models/_assume_role_for_pod_identity.py",
    } <= set(rendered)


def test_the_check_sees_a_changed_eks_auth_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import codegen.generate as generate

    out = tmp_path / "_generated"
    for name, text in committed_files().items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(generate, "OUT", out)
    shapes = out / "eks_auth" / "shapes.py"
    shapes.write_text(shapes.read_text(encoding="utf-8").replace("'eks-auth:", "'"), "utf-8")
    assert generate.main(["--check"]) == 1
    assert generate.main([]) == 0 and generate.main(["--check"]) == 0


def test_the_check_sees_a_changed_an_extra_and_a_missing_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import codegen.generate as generate

    out = tmp_path / "_generated"
    for name, text in committed_files().items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(generate, "OUT", out)
    assert generate.main(["--check"]) == 0
    cluster = out / "models" / "_cluster.py"
    cluster.write_text(cluster.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert generate.main(["--check"]) == 1
    assert generate.main([]) == 0 and generate.main(["--check"]) == 0
    (out / "models" / "_stale.py").write_text(HEADER, encoding="utf-8")
    (out / "models" / "_describe_cluster.py").unlink()
    assert generate.main(["--check"]) == 1
    assert generate.main([]) == 0 and generate.main(["--check"]) == 0
    assert not (out / "models" / "_stale.py").exists()
    assert (out / "models" / "_describe_cluster.py").exists()


def test_every_generated_file_says_so_on_its_first_line() -> None:
    files = committed_files()
    assert "models/__init__.py" in files and "models/_cluster.py" in files
    assert "eks_auth/models/__init__.py" in files
    for name, text in files.items():
        assert text.startswith(AUTH_HEADER if name.startswith("eks_auth/") else HEADER), name


@pytest.mark.parametrize(
    "model_path", ["data/eks/2017-11-01/service-2.json.gz", "data/eks-auth/2023-11-26/service-2.json.gz"]
)
def test_no_documentation_prose_is_copied(model_path: str) -> None:
    with gzip.open(BOTOCORE / model_path, "rt") as fh:
        model = json.load(fh)
    docs: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "documentation" and isinstance(value, str):
                    docs.append(value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(model)
    generated = "\n".join(committed_files().values())
    sentences = {
        s.strip()
        for doc in docs
        for s in re.split(r"(?<=[.!?])\s", re.sub(r"<[^>]+>", "", doc))
        if len(s.strip()) > 40
    }
    assert sentences  # the check looks at something
    copied = [s for s in sentences if s in generated]
    assert copied == []


def test_import_builds_no_model_class_and_loads_no_botocore() -> None:
    import subprocess
    import sys

    code = (
        "import sys, eks_async\n"
        "from eks_async._generated import models\n"
        "assert 'botocore' not in sys.modules and 'aiobotocore' not in sys.modules\n"
        "assert 'Cluster' not in vars(models)\n"
        "assert not [m for m in sys.modules if m.startswith(models.__name__ + '.')]\n"
        "eks_async.EKSClient(region='us-west-2', aws_access_key_id='a', aws_secret_access_key='b')\n"
        "assert 'botocore' not in sys.modules\n"
        "assert not [m for m in sys.modules if m.startswith(models.__name__ + '.')]\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_call_imports_only_the_modules_of_its_classes() -> None:
    import subprocess
    import sys

    code = (
        "import json, sys, eks_async\n"
        "from eks_async._generated import operations as ops\n"
        "from eks_async._restjson.parse import parse_output\n"
        "body = json.dumps({'association': {'associationId': 'a-1', 'createdAt': 1.5}})\n"
        "out = parse_output(ops.DESCRIBE_POD_IDENTITY_ASSOCIATION, 200, body.encode(), 'r')\n"
        "assert out.association.association_id == 'a-1'\n"
        "prefix = 'eks_async._generated.models.'\n"
        "print(sorted(m[len(prefix):] for m in sys.modules if m.startswith(prefix)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(
        ["_describe_pod_identity_association", "_pod_identity_association"]
    )


def test_the_generated_models_import_nothing_of_the_runtime_but_a_leaf() -> None:
    # The model modules may import eks_async._response (ResponseMetadata), which imports
    # nothing of eks_async; nothing else of the runtime.
    for name, text in committed_files().items():
        if name.startswith("eks_auth/models/"):
            imports = re.findall(r"^\s*from (\.+\w*) import", text, re.M)
            assert set(imports) <= {".", "...._response", "...._redact"} | {
                f".{n}" for n in re.findall(r"from \.(_\w+) import", text)
            }, name
            assert not re.search(r"^\s*(import|from) eks_async", text, re.M), name
        if name.startswith("models/"):
            imports = re.findall(r"^\s*from (\.+\w*) import", text, re.M)
            assert set(imports) <= {".", "..._response", "..._redact"} | {
                f".{n}" for n in re.findall(r"from \.(_\w+) import", text)
            }, name
            assert not re.search(r"^\s*(import|from) eks_async", text, re.M), name
    leaf = (OUT.parent / "_response.py").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(from \.|import eks_async|from eks_async)", leaf, re.M)


def test_model_classes_are_real_source_in_small_modules() -> None:
    import inspect

    from eks_async._generated import models

    cluster = models.Cluster
    assert cluster.__module__ == "eks_async._generated.models._cluster"
    assert "class Cluster:" in inspect.getsource(cluster)
    assert models.DescribeClusterResponse.__module__.endswith("._describe_cluster")
    assert models.ClusterStatus.__module__ == cluster.__module__
    assert not hasattr(models, "_BUILDERS")
    modules = {m for m in committed_files() if m.startswith("models/_")}
    assert 40 < len(modules) < 150


def test_response_metadata_is_never_none() -> None:
    import eks_async
    from eks_async._generated import models

    made = models.DescribeClusterResponse()
    assert made.response_metadata is models.NO_RESPONSE
    assert made.response_metadata == eks_async.ResponseMetadata(
        request_id=None, http_status=0, attempts=0
    )
    assert made == models.DescribeClusterResponse(
        response_metadata=eks_async.ResponseMetadata(request_id="r", http_status=200)
    )
    assert "response_metadata" not in repr(made)
    field = attrs.fields(models.DescribeClusterResponse).response_metadata
    assert field.type == "ResponseMetadata" and field.kw_only and not field.eq
    for name in models.__all__:
        cls = getattr(models, name)
        if attrs.has(cls) and "response_metadata" in attrs.fields_dict(cls):
            assert attrs.fields_dict(cls)["response_metadata"].default is models.NO_RESPONSE


def test_lazily_built_classes_are_ordinary_and_unique() -> None:
    import pickle
    import threading

    import eks_async
    from eks_async._generated import models

    seen: list[type] = []
    threads = [threading.Thread(target=lambda: seen.append(models.Taint)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(cls) for cls in seen}) == 1
    assert eks_async.Taint is models.Taint
    taint = eks_async.Taint(key="k", value="v", effect=eks_async.TaintEffect.NO_SCHEDULE)
    assert repr(taint).startswith("Taint(key='k'")
    assert pickle.loads(pickle.dumps(taint)) == taint
    assert "Taint" in dir(eks_async)
    assert "Taint" in dir(models)

    with pytest.raises(AttributeError):
        eks_async.NoSuchModel  # noqa: B018
    with pytest.raises(AttributeError):
        models.NoSuchModel  # noqa: B018


def test_first_use_from_many_threads_in_a_fresh_process() -> None:
    import subprocess
    import sys

    code = (
        "import threading, eks_async\n"
        "from eks_async._generated import models\n"
        "names = [n for n in models.__all__]\n"
        "seen = {}\n"
        "barrier = threading.Barrier(8)\n"
        "def work(i):\n"
        "    barrier.wait()\n"
        "    for n in names[i::2] + names[::-1]:\n"
        "        seen.setdefault(n, set()).add(id(getattr(eks_async, n)))\n"
        "threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "assert all(len(v) == 1 for v in seen.values()) and len(seen) == len(names)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_type_hints_of_every_output_class_resolve() -> None:
    import typing

    from eks_async._generated import models
    from eks_async._generated.operations import OPERATIONS
    from eks_async._generated.shapes import SHAPES
    from eks_async._response import ResponseMetadata

    for op in OPERATIONS.values():
        hints = typing.get_type_hints(getattr(models, SHAPES[op.output_shape][1]))
        assert hints["response_metadata"] is ResponseMetadata, op.name
