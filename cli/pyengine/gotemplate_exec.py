"""Executes a parsed Go template (`gotemplate`) as Go's text/template does, over the values and with the
functions of `gotemplate_funcs`."""
from __future__ import annotations

from typing import Any, Callable

from cli.pyengine.gotemplate import (Action, Branch, Chain, Command, Dot, Field, Identifier, Include, Literal,
                                     Loop, Parsed, Pipe, SubPipe, TemplateError, Text, Variable)
from cli.pyengine.gotemplate_funcs import FUNCTIONS, NO_VALUE, Failure, GoFields, Record, go_type, text, truth


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


# ---- executor -----------------------------------------------------------------------------------------------

class Executor:
    """One execution: `missing` is "default" (a missing map key is <no value>) or "error" (docker inspect)."""

    def __init__(self, parsed: Parsed, functions: dict[str, Callable[..., Any]] | None = None,
                 missing: str = "default") -> None:
        self.parsed = parsed
        self.functions = functions or FUNCTIONS
        self.missing = missing
        self.out: list[str] = []
        self.vars: list[tuple[str, Any]] = []

    def run(self, data: Any) -> str:
        self.vars = [("$", data)]
        self.walk(self.parsed.root, data)
        return "".join(self.out)

    def fail(self, node: Any, message: str) -> TemplateError:
        return TemplateError(f'template: {self.parsed.location(node.pos)}: executing "" at <{node}>: {message}')

    def walk(self, nodes: list[Any], dot: Any) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                value = self.pipe(node.pipe, dot)
                if not node.pipe.decl:
                    self.out.append(text(value))
            elif isinstance(node, Branch):
                self.branch(node, dot)
            elif isinstance(node, Loop):
                raise _Break() if node.kind == "break" else _Continue()
            elif isinstance(node, Include):
                body = self.parsed.defined.get(node.name)
                if body is None:
                    raise TemplateError(f'template: {self.parsed.location(node.pos)}: executing "" at '
                                        f'<{{{{template "{node.name}"}}}}>: template "{node.name}" not defined')
                value = self.pipe(node.pipe, dot) if node.pipe is not None else None
                saved, self.vars = self.vars, [("$", value)]
                try:
                    self.walk(body, value)
                finally:
                    self.vars = saved

    def branch(self, node: Branch, dot: Any) -> None:
        mark = len(self.vars)
        try:
            if node.kind == "range":
                self.range(node, dot)
                return
            value = self.pipe(node.pipe, dot)
            if truth(value):
                self.walk(node.body, value if node.kind == "with" else dot)
            elif node.otherwise is not None:
                self.walk(node.otherwise, dot)
        finally:
            del self.vars[mark:]

    def range(self, node: Branch, dot: Any) -> None:
        decl, node.pipe.decl = node.pipe.decl, []
        try:
            value = self.pipe(node.pipe, dot)
        finally:
            node.pipe.decl = decl
        if isinstance(value, dict):
            items = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, list):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        elif value is None or value is NO_VALUE:
            items = []
        else:
            raise self.fail(node.pipe.cmds[0], f"range can't iterate over {text(value)}")
        if not items:
            if node.otherwise is not None:
                self.walk(node.otherwise, dot)
            return
        mark = len(self.vars)
        for key, item in items:
            del self.vars[mark:]
            if len(decl) == 1:
                self.vars.append((decl[0], item))
            elif len(decl) == 2:
                self.vars += [(decl[0], key), (decl[1], item)]
            try:
                self.walk(node.body, item)
            except _Break:
                break
            except _Continue:
                continue

    def pipe(self, pipe: Pipe, dot: Any) -> Any:
        value: Any = NO_VALUE
        final: list[Any] = []
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, final)
            final = [value]
        for name in pipe.decl:
            if pipe.is_assign:
                for i in range(len(self.vars) - 1, -1, -1):
                    if self.vars[i][0] == name:
                        self.vars[i] = (name, value)
                        break
                else:
                    raise self.fail(pipe.cmds[0], f"undefined variable: {name}")
            else:
                self.vars.append((name, value))
        return value

    def command(self, cmd: Command, dot: Any, final: list[Any]) -> Any:
        first, rest = cmd.args[0], cmd.args[1:]
        try:
            if isinstance(first, Field):
                return self.fields(dot, first.names, rest, final, dot, first)
            if isinstance(first, Chain):
                return self.fields(self.arg(first.node, dot), first.names, rest, final, dot, first)
            if isinstance(first, Variable):
                return self.fields(self.variable(first), first.names[1:], rest, final, dot, first)
            if isinstance(first, Identifier):
                try:
                    return self.call(first, rest, final, dot)
                except Failure as e:
                    # Go places a failed call at its whole command.
                    raise self.fail(cmd, str(e)) from None
        except Failure as e:
            raise self.fail(first, str(e)) from None
        if rest or final:
            raise self.fail(first, f"can't give argument to non-function {first}")
        return self.arg(first, dot)

    def variable(self, node: Variable) -> Any:
        name = node.names[0]
        for var, value in reversed(self.vars):
            if var == name:
                return value
        raise self.fail(node, f"undefined variable: {name}")

    def arg(self, node: Any, dot: Any) -> Any:
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, SubPipe):
            mark = len(self.vars)
            try:
                return self.pipe(node.pipe, dot)
            finally:
                del self.vars[mark:]
        if isinstance(node, (Field, Chain, Variable, Identifier)):
            return self.command(Command([node], node.pos), dot, [])
        raise self.fail(node, f"can't handle {node}")

    def fields(self, receiver: Any, names: list[str], rest: list[Any], final: list[Any], dot: Any,
               node: Any) -> Any:
        if not names:
            if rest or final:
                raise Failure(f"can't give argument to non-function {node}")
            return receiver
        for i, name in enumerate(names):
            last = i == len(names) - 1
            args = [self.arg(a, dot) for a in rest] + final if last else []
            receiver = self.field(receiver, name, args, bool(last and (rest or final)))
        return receiver

    def field(self, receiver: Any, name: str, args: list[Any], has_args: bool) -> Any:
        if isinstance(receiver, Record):
            return receiver.get(name, args)
        if isinstance(receiver, dict):
            if has_args:
                raise Failure(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            if isinstance(receiver, GoFields) and name in receiver.go_names:
                return receiver.go_field(name)
            if self.missing == "error":
                raise Failure(f'map has no entry for key "{name}"')
            return NO_VALUE
        if receiver is NO_VALUE:
            if self.missing == "error":
                raise Failure(f'nil data; no entry for key "{name}"')
            return NO_VALUE
        if receiver is None:
            raise Failure(f"nil pointer evaluating interface {{}}.{name}")
        raise Failure(f"can't evaluate field {name} in type {go_type(receiver)}")

    def call(self, node: Identifier, rest: list[Any], final: list[Any], dot: Any) -> Any:
        fn = self.functions[node.name]
        if node.name in ("and", "or"):
            return self.logic(node.name, rest, final, dot)
        args = [self.arg(a, dot) for a in rest] + final
        try:
            return fn(*args)
        except TypeError:
            raise Failure(f"wrong number of args for {node.name}: got {len(args)}") from None

    def logic(self, name: str, rest: list[Any], final: list[Any], dot: Any) -> Any:
        """and/or evaluate their arguments lazily and give back the deciding one, as Go 1.18+ does."""
        count = len(rest) + len(final)
        if not count:
            raise Failure(f"wrong number of args for {name}: want at least 1 got 0")
        value = None
        for i in range(count):
            value = self.arg(rest[i], dot) if i < len(rest) else final[0]
            if truth(value) == (name == "or"):
                return value
        return value



def check_functions(parsed: Parsed) -> None:
    """Go resolves function names when it parses: an unknown one fails the template before it runs."""
    def visit(node: Any) -> None:
        if isinstance(node, Identifier) and node.name not in FUNCTIONS:
            raise TemplateError(f'template: {parsed.location(node.pos).rsplit(":", 1)[0]}: '
                                f'function "{node.name}" not defined')
        for child in _children(node):
            visit(child)

    for node in [*parsed.root, *(n for body in parsed.defined.values() for n in body)]:
        visit(node)


def _children(node: Any) -> list[Any]:
    if isinstance(node, list):
        return node
    if isinstance(node, (Action, Include)):
        return [node.pipe] if node.pipe is not None else []
    if isinstance(node, Branch):
        return [node.pipe, *node.body, *(node.otherwise or [])]
    if isinstance(node, Pipe):
        return list(node.cmds)
    if isinstance(node, Command):
        return list(node.args)
    if isinstance(node, SubPipe):
        return [node.pipe]
    if isinstance(node, Chain):
        return [node.node]
    return []
