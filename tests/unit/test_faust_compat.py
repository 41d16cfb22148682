"""The canary of the runtime seam (:mod:`agents.faust_compat`).

Every :data:`~agents.faust_compat.REGISTRY` entry is checked against the installed libraries,
one test per entry, and a failure names the seam item. Instance attributes are looked up on
real (never started) library objects. A scan of every module of every package checks that no
module but the seam uses a private name of faust-streaming, mode or aiokafka, and every library
method a project class overrides is registered. Further tests show that the
checks and the scan do fail when a library changes, and that the seam raises instead of
falling back.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import importlib.metadata
import inspect
import re
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import faust
import pytest
from aiohttp import web as aiohttp_web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.consumer.subscription_state import SubscriptionState
from aiokafka.protocol import commit
from aiokafka.protocol.types import Array, Int16, Int32, Int64, Schema, String
from aiokafka.structs import TopicPartition
from faust.stores.rocksdb import Store as RocksDBStore
from faust.transport.consumer import TransactionManager as FaustTransactionManager
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.web.drivers.aiohttp import Web as FaustWeb

from agents import faust_compat
from agents.faust_compat import REGISTRY, Kind, SeamItem, SeamMismatch

ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = {"faust", "mode", "aiokafka"}
UNREACHABLE = "127.0.0.1:9"  # nothing is started: no probe connects

# -- the registry checks ----------------------------------------------------------------------


def resolve(owner: str) -> Any:
    module_name, _, qualname = owner.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in filter(None, qualname.split(".")):  # "module" alone: a module-level member
        found = getattr(found, part)
    return found


def mismatch(item: SeamItem, probes: list[Any]) -> str | None:
    """What is wrong with ``item`` in the installed libraries, naming the item; ``None``: as
    the seam expects."""

    def problem(text: str) -> str:
        member = item.member or "SCHEMA"
        return f"seam item {item.name!r} ({item.library} {item.owner}.{member}): {text}"

    try:
        owner = resolve(item.owner)
    except (ImportError, AttributeError) as exc:
        return problem(f"the owner cannot be imported: {exc!r}")
    if item.kind is Kind.METHOD:
        found = getattr(owner, item.member, None)
        if not callable(found):
            return problem("no such method")
        parameters = tuple(inspect.signature(found).parameters)
        if parameters != item.expected:
            return problem(f"parameters are {parameters}, the seam expects {item.expected}")
    elif item.kind is Kind.ATTRIBUTE:
        if hasattr(owner, item.member):
            return None
        instances = [p for p in probes if isinstance(p, owner)]
        if not instances:
            return problem("not a class attribute, and no probe instance to look for it on")
        if not all(item.member in vars(p) for p in instances):
            return problem("no such attribute")
    elif item.kind is Kind.VALUE:
        if not hasattr(owner, item.member):
            return problem("no such attribute")
        value = getattr(owner, item.member)
        if value != item.expected:
            return problem(f"is {value!r}, the seam expects {item.expected!r}")
    elif item.kind is Kind.FIELDS:
        try:
            names = faust_compat.schema_names(owner.SCHEMA, item.member)
        except (AttributeError, ValueError) as exc:
            return problem(f"no such schema path: {exc!r}")
        missing = [name for name in item.expected if name not in names]
        if missing:
            return problem(f"fields {missing} missing (has {names})")
    elif item.kind is Kind.SOURCE:
        found = getattr(owner, item.member, None)
        if not callable(found):
            return problem("no such method")
        if faust_compat.source_digest(found) != item.expected:
            return problem("its body changed: the seam replaces it with a copy of the old one")
    elif item.kind is Kind.ABSENT and hasattr(owner, item.member):
        return problem("the library now defines this name, which the seam adds as a hook")
    return None


async def build_probes(data_dir: Path) -> list[Any]:
    """Library objects as the runtime makes them, never started, for instance attributes."""
    app = faust.App(
        "seam-probe",
        broker=f"kafka://{UNREACHABLE}",
        store="rocksdb://",
        datadir=str(data_dir),
        autodiscover=False,
        web_enabled=False,
    )
    table = app.Table("probe", partitions=1, key_type=bytes, value_type=bytes)
    subscriptions = SubscriptionState()
    subscriptions.subscribe({"probe"})
    tp = TopicPartition("probe", 0)
    subscriptions.assign_from_subscribed({tp})
    subscription = subscriptions.subscription
    client = AIOKafkaClient(bootstrap_servers=UNREACHABLE)
    coordinator = GroupCoordinator(client, SubscriptionState(), group_id="seam-probe")
    consumer = AIOKafkaConsumer(bootstrap_servers=UNREACHABLE)
    producer = AIOKafkaProducer(bootstrap_servers=UNREACHABLE, transactional_id="seam-probe")
    server = aiohttp_web.Server(lambda request: None)  # type: ignore[arg-type,return-value]
    try:
        return [
            app,
            app.assignor,
            app.consumer,
            app.producer,
            app.producer.buffer,
            app.tables.recovery,  # type: ignore[attr-defined]
            table.data,
            subscriptions,
            subscription,
            subscription.assignment,
            subscription.assignment.state_value(tp),
            coordinator,
            consumer,
            producer,
            server,
            server(),
            FaustWeb(app),
        ]
    finally:
        await coordinator.close()
        await client.close()
        await consumer.stop()
        await producer.stop()


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    return asyncio.run(build_probes(tmp_path_factory.mktemp("seam-probes")))


@pytest.mark.parametrize("item", REGISTRY, ids=[item.test_id for item in REGISTRY])
def test_seam_item_matches_the_installed_library(item: SeamItem, probes: list[Any]) -> None:
    found = mismatch(item, probes)
    assert found is None, found


def test_registry_ids_are_unique() -> None:
    ids = [item.test_id for item in REGISTRY]
    assert len(ids) == len(set(ids))


def test_every_seam_item_is_registered() -> None:
    """An item is whatever in the seam says what it relies on; each is in the registry, and
    each registry name is a member of the seam."""
    items = {
        name
        for name, member in vars(faust_compat).items()
        if (inspect.isfunction(member) or inspect.isclass(member))
        and member.__module__ == faust_compat.__name__
        and "Relies on:" in (member.__doc__ or "")
    }
    registered = {item.name for item in REGISTRY if ":" not in item.name}
    assert items == registered
    assert all(hasattr(faust_compat, name) for name in registered)
    overriders = {item.name for item in REGISTRY if ":" in item.name}
    assert overriders and all(inspect.isclass(resolve(name)) for name in overriders)


#: library methods project classes override that are the libraries' documented extension points
DOCUMENTED_OVERRIDES = {
    ("faust.sensors.base:Sensor", "on_message_in"): "Faust's Sensor API (docs: Sensors)",
    ("faust.sensors.base:Sensor", "on_rebalance_start"): "Faust's Sensor API (docs: Sensors)",
    ("faust.sensors.base:Sensor", "on_rebalance_end"): "Faust's Sensor API (docs: Sensors)",
    ("mode.services:Service", "stop"): "mode's Service API",
}


def library_overrides() -> Iterator[tuple[str, str, str]]:
    """``(project class, library class, member)``: each method a class of a project module
    defines that a faust, mode, aiokafka or aiohttp class it derives from defines too."""
    modules = [module for _, module in agents_modules()] + ["agents.faust_compat"]
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name, cls in vars(module).items():
            if not inspect.isclass(cls) or cls.__module__ != module_name:
                continue
            for member, value in vars(cls).items():
                if not inspect.isfunction(value) or member.startswith("__"):
                    continue
                for base in cls.__mro__[1:]:
                    if base.__module__.split(".", 1)[0] in LIBRARIES | {"aiohttp"} and member in vars(base):
                        yield f"{module_name}:{name}", f"{base.__module__}:{base.__qualname__}", member
                        break


def test_every_library_method_a_project_class_overrides_is_registered() -> None:
    """Overriding a library method is relying on it being called as it was: each override is
    in the registry with the method's signature, and with its source where the override calls
    it through ``super()`` (a seam item's own, or one of another module under ``module:Class``),
    unless the method is a documented extension point."""
    unregistered = []
    for project, library, member in library_overrides():
        cls = resolve(project)
        kinds = {
            item.kind
            for item in REGISTRY
            if item.member == member
            and item.kind in (Kind.METHOD, Kind.SOURCE)
            and resolve(item.owner) in cls.__mro__
        }
        if not kinds and (library, member) not in DOCUMENTED_OVERRIDES:
            unregistered.append(f"{project}.{member} overrides {library}.{member}")
        outside = not project.startswith("agents.faust_compat:")
        if kinds and outside and Kind.SOURCE not in kinds:
            unregistered.append(f"{project}.{member}: no source check of {library}.{member}")
    assert not unregistered, "\n".join(unregistered)


def test_the_override_check_finds_an_unregistered_override(monkeypatch: pytest.MonkeyPatch) -> None:
    kept = tuple(
        item for item in REGISTRY if not (item.name == "agents.transport:Consumer" and item.member == "ack")
    )
    monkeypatch.setattr(sys.modules[__name__], "REGISTRY", kept)
    with pytest.raises(AssertionError, match=re.escape("agents.transport:Consumer.ack overrides")):
        test_every_library_method_a_project_class_overrides_is_registered()


def test_pins_are_the_installed_and_declared_versions() -> None:
    """The seam was checked against :data:`PINS`; ``pyproject.toml`` pins the same, and those
    are installed."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for distribution, version in faust_compat.PINS.items():
        assert f"{distribution}=={version}" in declared
        assert importlib.metadata.version(distribution) == version


# -- the checks fail when a library changes ---------------------------------------------------


def item_named(name: str, member: str) -> SeamItem:
    return next(i for i in REGISTRY if i.name == name and i.member == member)


def rename_lock_dict(monkeypatch: pytest.MonkeyPatch, probes: list[Any]) -> None:
    monkeypatch.delattr(faust_aiokafka.Producer, "_trn_locks")


def rename_consumer_attribute(monkeypatch: pytest.MonkeyPatch, probes: list[Any]) -> None:
    consumer = next(p for p in probes if isinstance(p, faust_aiokafka.Consumer))
    monkeypatch.delattr(consumer, "_acked")


def change_store_signature(monkeypatch: pytest.MonkeyPatch, probes: list[Any]) -> None:
    def db_for_partition(self: Any, partition: int, create: bool) -> None: ...

    monkeypatch.setattr(RocksDBStore, "_db_for_partition", db_for_partition)


def change_id_format(monkeypatch: pytest.MonkeyPatch, probes: list[Any]) -> None:
    monkeypatch.setattr(FaustTransactionManager, "transactional_id_format", "{group_id}.{tpg.partition}")


def add_hook_name(monkeypatch: pytest.MonkeyPatch, probes: list[Any]) -> None:
    monkeypatch.setattr(faust_aiokafka.Consumer, "new_offset", lambda self, tp: None, raising=False)


def rename_response_field(monkeypatch: pytest.MonkeyPatch, probes: list[Any]) -> None:
    partitions = Array(
        ("partition", Int32), ("offset", Int64), ("meta", String("utf-8")), ("error_code", Int16)
    )
    schema = Schema(
        ("topics", Array(("topic", String("utf-8")), ("partitions", partitions))), ("error_code", Int16)
    )
    monkeypatch.setattr(commit.OffsetFetchResponse_v2, "SCHEMA", schema)


def change_table_manager_start(monkeypatch: pytest.MonkeyPatch, probes: list[Any]) -> None:
    async def on_start(self: Any) -> None:
        await self._update_channels()

    monkeypatch.setattr("faust.tables.manager.TableManager.on_start", on_start)


CHANGES: dict[str, tuple[SeamItem, Callable[[pytest.MonkeyPatch, list[Any]], None]]] = {
    "class attribute renamed": (item_named("transaction_lock", "_trn_locks"), rename_lock_dict),
    "instance attribute renamed": (item_named("acked_offsets", "_acked"), rename_consumer_attribute),
    "method signature changed": (item_named("partition_db", "_db_for_partition"), change_store_signature),
    "value changed": (item_named("transactional_id_for", "transactional_id_format"), change_id_format),
    "hook name taken": (item_named("ConsumerHooks", "new_offset"), add_hook_name),
    "replaced body changed": (item_named("PromptTableManager", "on_start"), change_table_manager_start),
    "protocol field renamed": (
        next(i for i in REGISTRY if i.owner.endswith("_v2") and i.member == "topics.partitions"),
        rename_response_field,
    ),
}


@pytest.mark.parametrize("change", CHANGES)
def test_the_check_reports_a_changed_library(
    change: str, probes: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    item, apply = CHANGES[change]
    assert mismatch(item, probes) is None
    apply(monkeypatch, probes)
    found = mismatch(item, probes)
    assert found is not None
    assert f"seam item {item.name!r}" in found
    assert item.member in found or (item.kind is Kind.FIELDS and "meta" in found)


# -- the seam raises instead of falling back --------------------------------------------------


def test_a_missing_attribute_raises() -> None:
    for call in (
        lambda: faust_compat.transaction_producer(SimpleNamespace(), "app-0-0"),
        lambda: faust_compat.in_transaction(SimpleNamespace()),
        lambda: faust_compat.in_recovery(SimpleNamespace()),
        lambda: faust_compat.partition_state(SimpleNamespace(), TP("t", 0)),
    ):
        with pytest.raises(AttributeError):
            call()


def test_offset_fetch_answers_are_read_by_field_name() -> None:
    v1 = commit.OffsetFetchResponse_v1([("t", [(0, 5, "m", 0), (1, -1, "", 0)])])
    v3 = commit.OffsetFetchResponse_v3(0, [("t", [(2, 7, None, 0)])], 14)
    answer = faust_compat.decode_offset_fetch("g", v1)
    assert answer.error_code == 0
    assert answer.entries == [
        faust_compat.CommittedEntry(TP("t", 0), 5, "m", 0),
        faust_compat.CommittedEntry(TP("t", 1), -1, "", 0),
    ]
    answer = faust_compat.decode_offset_fetch("g", v3)
    assert (answer.group_id, answer.error_code) == ("g", 14)
    assert answer.entries == [faust_compat.CommittedEntry(TP("t", 2), 7, None, 0)]


def test_the_stable_offset_fetch_asks_for_stable_offsets_only() -> None:
    """OffsetFetch v7 with require_stable, in the flexible encoding (KIP-447), is the one version
    the stable request may send; its answer is read like the others."""
    request = faust_compat.StableOffsetFetchRequest("g", [("t", [0, 2])])
    assert (faust_compat.StableOffsetFetchRequest_v7,) == request._CLASSES
    struct = request.prepare({9: (1, 9)})
    assert struct.API_VERSION == 7 and struct.FLEXIBLE_VERSION
    assert struct.to_object() == {
        "consumer_group": "g",
        "topics": [{"topic": "t", "partitions": [0, 2], "tags": {}}],
        "require_stable": True,
        "tags": {},
    }
    # compact string "g", one topic "t" with partitions [0, 2], require_stable, no tags
    assert struct.encode() == b"\x02g\x02\x02t\x03\x00\x00\x00\x00\x00\x00\x00\x02\x00\x01\x00"
    with pytest.raises(NotImplementedError):
        request.prepare({9: (1, 6)})  # a broker without v7: no silent fallback to v3
    response = faust_compat.StableOffsetFetchResponse_v7(
        0, [("t", [(0, 5, -1, None, 0, {}), (2, -1, -1, "", 88, {})], {})], 0, {}
    )
    decoded = faust_compat.StableOffsetFetchResponse_v7.decode(response.encode())
    answer = faust_compat.decode_offset_fetch("g", decoded)
    assert answer.error_code == 0
    assert answer.entries == [
        faust_compat.CommittedEntry(TP("t", 0), 5, None, 0),
        faust_compat.CommittedEntry(TP("t", 2), -1, "", 88),
    ]


def test_an_unknown_offset_fetch_version_raises() -> None:
    response = SimpleNamespace(API_VERSION=9)
    with pytest.raises(SeamMismatch, match="version 9"):
        faust_compat.decode_offset_fetch("g", response)


async def test_partition_state_reads_aiokafka_fetch_state() -> None:
    subscriptions = SubscriptionState()
    subscriptions.subscribe({"t"})
    subscriptions.assign_from_subscribed({TopicPartition("t", 0)})
    consumer = SimpleNamespace(_subscription=subscriptions)
    assert faust_compat.partition_state(consumer, TP("t", 1)) is None
    state = subscriptions.subscription.assignment.state_value(TopicPartition("t", 0))
    state.seek(12)
    state.lso, state.highwater = 12, 15
    found = faust_compat.partition_state(consumer, TP("t", 0))
    assert found == faust_compat.PartitionFetchState(
        position=12, last_stable_offset=12, highwater=15, paused=False, status=str(state._status)
    )


# -- no private library name outside the seam -------------------------------------------------

#: private attributes every Python object or module may use: namedtuple's API, ``os._exit``
ALLOWED_PRIVATE = {"_replace", "_asdict", "_fields", "_make"}
ALLOWED_MODULE_PRIVATE = {("os", "_exit")}
#: attributes read with a ``getattr`` default that belong to Python's coroutine objects
COROUTINE_ATTRIBUTES = {"cr_frame", "ag_frame", "gi_frame", "cr_await", "ag_await", "gi_yieldfrom"}
ATTRIBUTE_FUNCTIONS = {"getattr", "hasattr", "setattr", "delattr", "attrgetter"}


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def from_library(cls: Any) -> bool:
    """Whether ``cls`` derives from a class of faust-streaming, mode or aiokafka."""
    mro = getattr(cls, "__mro__", None)
    if mro is None:
        return True  # not resolvable: checked as strictly as a library subclass
    return any(c.__module__.split(".", 1)[0] in LIBRARIES for c in mro)


@dataclass(frozen=True)
class Finding:
    line: int
    what: str


class PrivateUseScan(ast.NodeVisitor):
    """Uses of private names that belong to another object, and ``getattr`` defaults.

    ``self._x`` (and ``cls._x``) is a class's own business, unless the class derives from a
    library class: there it is the library's name, and so is a method named ``_x``. Any other
    ``obj._x`` reaches into someone else's object."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.classes: list[bool] = []  # per enclosing class: derives from a library class
        self.findings: list[Finding] = []

    def flag(self, node: ast.AST, what: str) -> None:
        self.findings.append(Finding(getattr(node, "lineno", 0), what))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        derived = from_library(self.namespace.get(node.name)) if not self.classes else True
        if derived:
            for statement in node.body:
                if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef) and is_private(
                    statement.name
                ):
                    self.flag(statement, f"{node.name} (a library subclass) defines {statement.name}")
        self.classes.append(derived)
        self.generic_visit(node)
        self.classes.pop()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if is_private(node.attr) and node.attr not in ALLOWED_PRIVATE:
            value = node.value
            own = isinstance(value, ast.Name) and value.id in {"self", "cls"}
            module = isinstance(value, ast.Name) and (value.id, node.attr) in ALLOWED_MODULE_PRIVATE
            in_library_class = bool(self.classes) and self.classes[-1]
            if not module and (not own or in_library_class):
                self.flag(node, f"{ast.unparse(node)}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name in ATTRIBUTE_FUNCTIONS:
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and is_private(arg.value):
                    self.flag(node, f"{ast.unparse(node)}")
            attribute = node.args[1] if len(node.args) > 1 else None
            named = isinstance(attribute, ast.Constant) and attribute.value in COROUTINE_ATTRIBUTES
            if name == "getattr" and len(node.args) == 3 and not named:
                self.flag(node, f"getattr with a default: {ast.unparse(node)}")
        self.generic_visit(node)


def scan(source: str, namespace: dict[str, Any]) -> list[Finding]:
    """Findings of :class:`PrivateUseScan` in ``source``, whose top-level names are bound in
    ``namespace`` (the imported module, to tell library subclasses)."""
    visitor = PrivateUseScan(namespace)
    visitor.visit(ast.parse(source))
    return visitor.findings


#: the project's packages: the scan reads every module of each
PACKAGES = ("agents", "streams", "windows", "bench")


def agents_modules() -> Iterator[tuple[Path, str]]:
    """Every module of every package but the seam (``__main__`` aside: importing it runs it)."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name not in {"faust_compat.py", "__main__.py"}:
                yield path, ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_no_module_but_the_seam_uses_a_private_library_name() -> None:
    found = []
    for path, module_name in agents_modules():
        namespace = vars(importlib.import_module(module_name))
        found += [f"{path.name}:{f.line}: {f.what}" for f in scan(path.read_text(), namespace)]
    assert not found, "private library names outside agents/faust_compat.py:\n" + "\n".join(found)


def test_the_scan_covers_every_module_of_every_package() -> None:
    names = {path.relative_to(ROOT).as_posix() for path, _ in agents_modules()}
    assert {"agents/transport.py", "agents/sink.py", "streams/kafka/credentials_check.py"} <= names
    assert {"streams/kafka/topic_admin.py", "windows/write_back.py", "bench/query_scale.py"} <= names
    every = {p.relative_to(ROOT).as_posix() for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    assert every - names == {"agents/faust_compat.py", "bench/__main__.py", "agents/cli/__main__.py"}


#: the library modules a module other than the seam may import from: the documented API
PUBLIC_LIBRARY_MODULES = {
    "faust",
    "faust.types",
    "faust.types.tuples",
    "faust.types.enums",
    "faust.exceptions",
    "faust.auth",
    "faust.assignor",
    "mode",
    "aiokafka",
    "aiokafka.errors",
    "aiokafka.structs",
    "aiokafka.admin",
    "aiokafka.admin.config_resource",
    "aiokafka.partitioner",
    "aiohttp",
    "aiohttp.web",
}


def library_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import of a library module in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(node.lineno, n) for n in names if n.split(".", 1)[0] in LIBRARIES | {"aiohttp"}]
    return found


def test_no_module_but_the_seam_imports_a_library_module_outside_its_documented_api() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path, _ in agents_modules()
        for line, module in library_imports(path.read_text())
        if module not in PUBLIC_LIBRARY_MODULES
    ]
    assert not found, "library internals imported outside agents/faust_compat.py:\n" + "\n".join(found)


def test_the_import_scan_finds_an_internal_module() -> None:
    source = (
        "import aiokafka.conn\nfrom faust.transport.drivers import aiokafka as d\nfrom aiokafka import x\n"
    )
    found = library_imports(source)
    assert found == [(1, "aiokafka.conn"), (2, "faust.transport.drivers"), (3, "aiokafka")]


#: every pattern the runtime used before the seam, as it was written
PATTERNS = {
    "private attribute of a library object": "def f(p, tid):\n    return p._transaction_producers.get(tid)\n",
    "private attribute in a chain": "def f(p):\n    return p._txn_manager.is_in_transaction()\n",
    "private method of a library object": "def f(table):\n    return table.data._db_for_partition(0)\n",
    "private attribute of an attribute": "def f(self, app):\n    return self.app.producer._trn_locks\n",
    "thread of a consumer": "def f(consumer):\n    return consumer._thread._consumer\n",
    "aiokafka partition state": "def f(state):\n    return state._position\n",
    "getattr of a private name with a default": "def f(p):\n    return getattr(p, '_trn_locks', {})\n",
    "getattr of a public name with a default": "def f(app):\n    return getattr(app, 'in_recovery', False)\n",
    "getattr of a response field with a default": "def f(r):\n    return {getattr(r, 'error_code', 0)}\n",
    "private override": (
        "from faust.transport.drivers import aiokafka as faust_aiokafka\n"
        "class T(faust_aiokafka.AIOKafkaConsumerThread):\n"
        "    async def _commit(self, offsets):\n        return True\n"
    ),
    "private self attribute in a library subclass": (
        "from faust.transport.drivers import aiokafka as faust_aiokafka\n"
        "class C(faust_aiokafka.Consumer):\n"
        "    def f(self, tp):\n        return self._acked_index[tp]\n"
    ),
    "own private attribute in a library subclass": (
        "from faust.transport.consumer import TransactionManager\n"
        "class M(TransactionManager):\n"
        "    def f(self):\n        return bool(self._written)\n"
    ),
    "private super() call": (
        "from faust.transport.producer import ProducerBuffer\n"
        "class B(ProducerBuffer):\n"
        "    async def send(self, fut):\n        await super()._send_pending(fut)\n"
    ),
    "fetcher's stop event": "def f(fetcher):\n    return fetcher._stopped.is_set\n",
    "subclass of a library subclass": (
        "from faust.transport.producer import ProducerBuffer\n"
        "class B(ProducerBuffer):\n    pass\n"
        "class D(B):\n    def f(self):\n        return self._in_flight\n"
    ),
}


def namespace_of(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<pattern>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_scan_finds_each_pattern_the_runtime_used(pattern: str) -> None:
    source = PATTERNS[pattern]
    assert scan(source, namespace_of(source))


def test_the_scan_allows_a_class_its_own_private_names() -> None:
    source = (
        "import os\n"
        "class Gate:\n"
        "    def __init__(self):\n        self._lock = None\n"
        "    def _held(self):\n        return self._lock\n"
        "def chain(coro):\n    return getattr(coro, 'cr_frame', None)\n"
        "def stop(code):\n    os._exit(code)\n"
        "def point(tp):\n    return tp._replace(partition=0)\n"
    )
    assert scan(source, namespace_of(source)) == []


def test_no_private_name_is_hidden_in_a_string() -> None:
    """A private name written as text (``getattr(obj, name)``) is what the scan cannot see: no
    module but the seam holds one."""
    pattern = re.compile(r"""["']_[a-z]\w*["']""")
    found = [
        f"{path.name}:{n}: {line.strip()}"
        for path, _ in agents_modules()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, "\n".join(found)


async def test_the_livelock_check_skips_a_partition_whose_position_is_not_known_yet() -> None:
    """Faust's check reads ``position`` of every assigned partition, which aiokafka asserts is
    known; the transport's consumer thread checks a partition only once it has one."""
    from agents.transport import ConsumerThread

    assert "tp_state.position" in inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread.verify_event_path)
    subscriptions = SubscriptionState()
    subscriptions.subscribe({"t"})
    subscriptions.assign_from_subscribed({TopicPartition("t", 0)})
    state = subscriptions.subscription.assignment.state_value(TopicPartition("t", 0))
    with pytest.raises(AssertionError):
        state.position  # noqa: B018 - what Faust's check would read
    consumer = SimpleNamespace(_subscription=subscriptions)
    thread = SimpleNamespace(_ensure_consumer=lambda: consumer)
    assert ConsumerThread.verify_event_path(cast(Any, thread), 0.0, TP("t", 0)) is None


def test_recovery_state_reads_what_fausts_recovery_tracks(tmp_path: Path) -> None:
    """The remaining records are Faust's per changelog partition (highwater minus the offset
    restored so far, never negative); the recovery times are unset before any recovery."""
    app = faust.App("seam-recovery", store="rocksdb://", datadir=str(tmp_path), autodiscover=False)
    app.Table("probe", partitions=2, key_type=bytes, value_type=bytes)
    recovery = app.tables.recovery
    restoring, restored = TP("seam-recovery-probe-changelog", 0), TP("seam-recovery-probe-changelog", 1)
    recovery.active_highwaters[restoring], recovery.active_offsets[restoring] = 120, 20
    recovery.active_highwaters[restored], recovery.active_offsets[restored] = 7, 7
    assert faust_compat.recovery_remaining(app) == {restoring: 100, restored: 0}
    recovery.revoke(restoring)
    assert faust_compat.recovery_remaining(app) == {restored: 0}
    assert faust_compat.recovery_times(app) == (None, None)


def test_persisted_changelog_offsets_are_the_stores_of_the_partitions_recovery_holds(tmp_path: Path) -> None:
    app = faust.App("seam-persisted", store="rocksdb://", datadir=str(tmp_path), autodiscover=False)
    table = app.Table("probe", partitions=2, key_type=bytes, value_type=bytes)
    held, unknown = TP("seam-persisted-probe-changelog", 0), TP("seam-persisted-probe-changelog", 1)
    table.data.set_persisted_offset(held, 41)  # type: ignore[attr-defined]
    app.tables.recovery.add_active(table, held)  # type: ignore[attr-defined]
    assert faust_compat.persisted_changelog_offsets(app, [held, unknown]) == {held: 41}
