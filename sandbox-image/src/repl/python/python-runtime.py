"""The REPL runtime of Python cells, inside Pyodide in the cell worker.

The worker executes this file as the module ``_rlm_runtime`` and calls ``install(host)`` once;
then ``run_cell``, ``load_context`` and ``define_tools`` for each request. Cells run in
``__main__.__dict__``. ``host`` is a JavaScript object of the worker (see python-runner.ts):

- ``host.stdout(text)`` / ``host.stderr(text)``: the cell's captured output streams;
- ``host.maxFinalChars``, ``host.maxListedVariables``: the protocol's limits on an answer and on the
  variables a result lists; ``host.finalTooLargeMessage(chars, at_least, source)``: the error text of
  an answer past its limit (the same words as in JavaScript; ``source`` is "FINAL", "FINAL_VAR" or
  'answer["content"]');
- ``host.sleep(seconds)``: blocks until the time is up or the main thread interrupts the cell;
- ``host.subcall(kind, prompts_json, batched, model)``: asks the host, blocking until it answers;
- ``host.tool(name, args_json)``: calls a custom tool on the host, blocking until it answers.

Both calls answer a JSON string: ``{"ok": value}``, ``{"error": [type, message]}``, or
``{"timeout": message}`` when the cell's deadline passed while waiting.

Nothing here may keep a reference to JavaScript at import time: the interpreter comes from a memory
snapshot that holds only the standard library, and this module is executed after it is restored.
"""

import ast
import builtins
import codecs
import io
import json
import keyword
import linecache
import reprlib
import sys
import types

# Pre-imported for cells (the REPL contract): bound in __main__ by install().
import collections
import itertools
import math
import re

PRE_IMPORTED = {"re": re, "json": json, "math": math, "collections": collections, "itertools": itertools}

RESERVED_NAMES = (
    "context",
    "llm_query",
    "llm_query_batched",
    "rlm_query",
    "rlm_query_batched",
    "FINAL",
    "FINAL_VAR",
    "SHOW_VARS",
    "print",
)

# The dict a cell may answer through instead of FINAL, as the reference implementation's REPL does:
# answer["content"] = ...; answer["ready"] = True, or answer = {"content": ..., "ready": True}. Unlike
# the reserved names, a cell may bind it to anything else: it is then the cell's own variable
# (listed, usable with FINAL_VAR), since "answer" is a common name for one.
ANSWER_NAME = "answer"

MAX_FRAMES = 32
FRAME_LIMIT_CHARS = 1024
MESSAGE_LIMIT_CHARS = 64 * 1024
NAME_LIMIT_CHARS = 256
# Set from the host by install(): the protocol's limits (MAX_FINAL_CHARS, MAX_LISTED_VARIABLES).
MAX_FINAL_CHARS = 1024 * 1024
MAX_LISTED_VARIABLES = 1000
# str() of built-in containers nested deeper than this is not attempted for FINAL: their repr
# recurses in C, and a few thousand levels overflow the WebAssembly stack, which kills the interpreter.
STR_SAFE_DEPTH = 200
# Writes are handed to the host in pieces of at most this many characters (or bytes), so one huge
# write never becomes one huge JavaScript string: the capture keeps only its head and tail anyway.
WRITE_CHUNK = 64 * 1024
# Cells whose source is kept for tracebacks of the functions they defined.
KEPT_CELL_SOURCES = 1000

_ABSENT = object()

_host = None
_main = sys.modules["__main__"].__dict__
# Reserved name -> the value restored after each cell (_ABSENT: the name must not be a global).
_reserved = {}
_contexts = set()
_tools = {}
# Globals present before the first cell (module dunders, pre-imports), by identity.
_baseline = {}
_final = None
# The first answer refused as too large in this cell (reported unless a later answer was taken).
_final_refused = None
# The answer dict the REPL bound last; while "answer" is still this dict, it is not listed as a variable.
_answer = None
_cell_sources = collections.deque()
_stdout = None
_stderr = None


class ToolError(Exception):
    """A custom tool failed on the host: ``ToolError: lookup failed: <reason>``."""


class FinalTooLargeError(Exception):
    """The answer given to FINAL or FINAL_VAR, or set ready in the answer dict, renders to more text
    than the protocol carries."""


class _CellDeadline(BaseException):
    """The cell's time limit passed while it waited for the host. Not an Exception, so a cell's
    ``except Exception`` cannot swallow it."""


class _HostStream(io.TextIOBase):
    """sys.stdout / sys.stderr of the cells: every write goes straight to the cell's capture, in
    pieces (see WRITE_CHUNK); ``buffer`` takes bytes, decoded as UTF-8."""

    def __init__(self, name, write):
        self._name = name
        self._write = write
        self._buffer = _HostBinaryStream(self)

    @property
    def buffer(self):
        return self._buffer

    @property
    def name(self):
        return self._name

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "strict"

    def writable(self):
        return True

    def isatty(self):
        return False

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        size = len(text)
        if size <= WRITE_CHUNK:
            if size:
                self._write(text)
        else:
            for start in range(0, size, WRITE_CHUNK):
                self._write(text[start : start + WRITE_CHUNK])
        return size

    def flush(self):
        pass


class _HostBinaryStream(io.RawIOBase):
    """``sys.stdout.buffer``: bytes decoded as UTF-8 (invalid sequences replaced), a piece at a time."""

    def __init__(self, text_stream):
        self._text = text_stream
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @property
    def name(self):
        return self._text.name

    def writable(self):
        return True

    def isatty(self):
        return False

    def write(self, data):
        view = memoryview(data).cast("B")
        size = len(view)
        for start in range(0, size, WRITE_CHUNK):
            text = self._decoder.decode(view[start : start + WRITE_CHUNK])
            if text:
                self._text.write(text)
        return size

    def finish(self):
        """Ends a cell: an incomplete UTF-8 sequence at the end becomes a replacement character."""
        text = self._decoder.decode(b"", True)
        if text:
            self._text.write(text)


# ------------------------------------------------------------------------------------------------
# The functions cells call


def _host_call(reply_json):
    reply = json.loads(reply_json)
    if "ok" in reply:
        return reply["ok"]
    if "timeout" in reply:
        raise _CellDeadline(reply["timeout"])
    kind, message = reply["error"]
    raise {"TypeError": TypeError, "RangeError": ValueError, "ToolError": ToolError}.get(kind, RuntimeError)(message)


def _check_model(name, model):
    if model is None:
        return ""
    if not isinstance(model, str) or not 0 < len(model) <= 256:
        raise TypeError(f"{name}: model must be a non-empty str of at most 256 characters, got {_describe(model)}")
    return model


def _describe(value):
    return "None" if value is None else type(value).__name__


def _single(kind):
    def query(prompt, model=None):
        if not isinstance(prompt, str):
            raise TypeError(f"{kind}: the prompt must be a str, got {_describe(prompt)}")
        model = _check_model(kind, model)
        return _host_call(_host.subcall(kind, json.dumps([prompt]), False, model))[0]

    query.__name__ = query.__qualname__ = kind
    return query


def _batched(kind):
    name = f"{kind}_batched"

    def query_batched(prompts, model=None):
        if isinstance(prompts, (str, bytes)) or not isinstance(prompts, (list, tuple)):
            raise TypeError(f"{name}: the prompts must be a list of str, got {_describe(prompts)}")
        for index, prompt in enumerate(prompts):
            if not isinstance(prompt, str):
                raise TypeError(f"{name}: prompts[{index}] must be a str, got {_describe(prompt)}")
        model = _check_model(name, model)
        if not prompts:
            return []
        return _host_call(_host.subcall(kind, json.dumps(list(prompts)), True, model))

    query_batched.__name__ = query_batched.__qualname__ = name
    return query_batched


def FINAL(value):
    """Ends the run with ``value`` as the answer."""
    global _final
    if _final is None:
        _final = {"value": _render_answer(value, "FINAL"), "via": "FINAL"}


def _render_answer(value, via):
    """The answer's text; raises (and remembers) FinalTooLargeError when it is past the limit."""
    global _final_refused
    text, chars, at_least = render_final(value)
    if text is not None:
        return text
    error = FinalTooLargeError(str(_host.finalTooLargeMessage(chars, at_least, via)))
    if _final_refused is None:
        _final_refused = error
    raise error


def _listing():
    names = _variable_names()
    if not names:
        return "Variables: none"
    shown = ", ".join(name[:NAME_LIMIT_CHARS] for name in names[:MAX_LISTED_VARIABLES])
    left = len(names) - MAX_LISTED_VARIABLES
    return f"Variables: {shown}" + (f" … and {left:,} more" if left > 0 else "")


def FINAL_VAR(name):
    """Ends the run with the variable called ``name`` as the answer."""
    global _final

    def fail(message):
        _stderr.write(message + "\n")
        return message

    if not isinstance(name, str):
        return fail(
            f'FINAL_VAR takes the variable\'s name as a str, e.g. FINAL_VAR("answer"); got {_describe(name)}. '
            f"To answer with a value, use FINAL(value). {_listing()}"
        )
    trimmed = name.strip().strip("'\"`").strip()
    if trimmed not in _variable_names():
        if trimmed == ANSWER_NAME and _main.get(ANSWER_NAME) is _answer:
            return fail(
                'FINAL_VAR: "answer" is the REPL\'s answer dict, not a variable of yours. To answer with it, set '
                f'answer["content"] = … and answer["ready"] = True; or call FINAL(value). {_listing()}'
            )
        return fail(f"FINAL_VAR: no variable named {json.dumps(trimmed[:NAME_LIMIT_CHARS])}. {_listing()}")
    if _final is None:
        _final = {"value": _render_answer(_main[trimmed], "FINAL_VAR"), "via": "FINAL_VAR", "variable": trimmed[:NAME_LIMIT_CHARS]}
    return None


def SHOW_VARS():
    """Prints and returns the variables the cells made, with their types."""
    names = _variable_names()
    variables = list_variables(names)
    text = "No variables yet." if not variables else "Variables:\n" + "\n".join(f"  {name}: {kind}" for name, kind in variables)
    left = len(names) - len(variables)
    if left > 0:
        text += f"\n  … and {left:,} more (only the first {MAX_LISTED_VARIABLES:,} by name are listed)"
    _stdout.write(text + "\n")
    return text


def _bind_answer(content):
    """Binds "answer" to a new dict of the REPL's with ``content`` and ready False."""
    global _answer
    _answer = {"content": content, "ready": False}
    _main[ANSWER_NAME] = _answer


def _take_answer():
    """After a cell: when "answer" is a dict whose "ready" is truthy, its "content" ("" when absent)
    is the cell's answer unless FINAL/FINAL_VAR gave one, rendered as FINAL renders a value. "answer"
    is then bound to a new dict that is not ready (keeping a refused content), so the next cell does
    not answer again. An unbound "answer" gets a new dict. Answers the refusal when the content is
    too large (also remembered as _final_refused), else None. Safe to run again after an interrupt."""
    global _final, _final_refused
    current = _main.get(ANSWER_NAME, _ABSENT)
    if current is _ABSENT:
        _bind_answer("")
        return None
    if not isinstance(current, dict):
        return None
    try:
        # dict's own methods: a subclass's overrides are the cell's code.
        if not dict.get(current, "ready"):
            return None
    except Exception as error:  # a __bool__ that raises
        _stderr.write(f'Note: the REPL could not tell whether answer["ready"] is true ({type(error).__name__}: {_safe_str(error)}), so no answer was taken.\n')
        return None
    content = dict.get(current, "content", "")
    text, chars, at_least = render_final(content)
    if text is not None:
        if _final is None:
            _final = {"value": text, "via": "FINAL"}
        _bind_answer("")
        return None
    error = FinalTooLargeError(str(_host.finalTooLargeMessage(chars, at_least, 'answer["content"]')))
    if _final_refused is None:
        _final_refused = error
    _bind_answer(content)
    return error


def _sleep(seconds):
    """time.sleep that a timeout interrupts (Pyodide's own sleep does not wake for the interrupt buffer)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"'{type(seconds).__name__}' object cannot be interpreted as an integer or float")
    if seconds != seconds or seconds < 0:
        raise ValueError("sleep length must be non-negative")
    _host.sleep(float(seconds))


def _make_tool(name):
    def tool(*args, **kwargs):
        if kwargs:
            raise TypeError(f"{name}: tools take positional arguments only; got keyword argument(s) {', '.join(kwargs)}")
        try:
            payload = json.dumps(list(args), allow_nan=False)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"{name}: the arguments must be JSON values (str, int, float, bool, None, and lists and dicts of them): {error}"
            ) from None
        return _host_call(_host.tool(name, payload))

    tool.__name__ = tool.__qualname__ = name
    tool.__module__ = "__main__"
    return tool


# ------------------------------------------------------------------------------------------------
# Rendering


class _ValueRepr(reprlib.Repr):
    """repr() with the same limits as the JavaScript REPL's values: 4 levels, 100 items, 2000 characters."""

    def __init__(self):
        super().__init__()
        self.maxlevel = 4
        self.maxtuple = self.maxlist = self.maxarray = self.maxdict = self.maxset = self.maxfrozenset = self.maxdeque = 100
        self.maxstring = self.maxlong = self.maxother = 2000

    def repr_dict(self, x, level):
        # reprlib sorts the keys; show them in insertion order, as repr() does.
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        pieces = [f"{self.repr1(key, level - 1)}: {self.repr1(x[key], level - 1)}" for key in itertools.islice(x, self.maxdict)]
        if len(x) > self.maxdict:
            pieces.append("...")
        return "{" + ", ".join(pieces) + "}"


_value_repr = _ValueRepr()


def render_value(value):
    try:
        return _value_repr.repr(value)
    except BaseException as error:  # a __repr__ that raises (or is interrupted)
        return f"[value whose repr failed: {type(error).__name__}: {_safe_str(error)}]"


def _bounded_json(value, limit):
    """(text, chars): the value as pretty JSON, or (None, chars) once the text passes ``limit``
    characters. Raises when JSON has no text for the value (an object, a cycle, NaN), or when it nests
    deeper than the recursion limit (RecursionError, or MemoryError from the C stack's guard)."""
    encoder = json.JSONEncoder(indent=2, ensure_ascii=False, allow_nan=False)
    pieces = []
    chars = 0
    for piece in encoder.iterencode(value):
        chars += len(piece)
        if chars > limit:
            return None, chars
        pieces.append(piece)
    return "".join(pieces), chars


_NESTING = (list, tuple, dict, set, frozenset, collections.deque)


def _str_is_unsafe(value):
    """Whether str(value) could overflow the WebAssembly stack: built-in containers nested deeper than
    STR_SAFE_DEPTH. Iterative and bounded: it looks at no more elements than an answer has characters."""
    if not isinstance(value, _NESTING):
        return False
    stack = [(value, 1)]
    seen = {id(value)}
    examined = 0
    while stack:
        item, level = stack.pop()
        if level > STR_SAFE_DEPTH:
            return True
        children = itertools.chain.from_iterable(item.items()) if isinstance(item, dict) else item
        for child in children:
            examined += 1
            if examined > MAX_FINAL_CHARS:
                return False
            if isinstance(child, _NESTING) and id(child) not in seen:
                seen.add(id(child))
                stack.append((child, level + 1))
    return False


def render_final(value):
    """(text, chars, at_least): the answer as text (strings as they are, other values as pretty
    JSON, else str() or a short repr), or text None when it is longer than MAX_FINAL_CHARS
    (``chars`` long, or more when ``at_least``). JSON stops at the limit; a value nested past the
    recursion limit falls back to str() and then to repr() four levels deep."""
    limit = MAX_FINAL_CHARS
    if isinstance(value, str):
        return (value, len(value), False) if len(value) <= limit else (None, len(value), False)
    try:
        text, chars = _bounded_json(value, limit)
        return (text, chars, False) if text is not None else (None, chars, True)
    except Exception:  # not JSON (TypeError, ValueError), or too deep (RecursionError, MemoryError)
        pass
    try:
        if _str_is_unsafe(value):
            raise RecursionError("nested too deeply for str()")
        text = str(value)
        if not isinstance(text, str):
            raise TypeError("__str__ returned a non-str")
    except Exception:
        text = render_value(value)
    return (text, len(text), False) if len(text) <= limit else (None, len(text), False)


def short_type(value):
    if isinstance(value, type):
        return "class"
    if isinstance(value, types.ModuleType):
        return "module"
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return "function"
    name = type(value).__name__
    if isinstance(value, (list, tuple, dict, set, frozenset, collections.deque)):
        return f"{name}({len(value)})"[:NAME_LIMIT_CHARS]
    return name[:NAME_LIMIT_CHARS]


def _safe_str(error):
    try:
        return str(error)
    except BaseException:
        return ""


def _cap(text, limit):
    """``text`` cut to at most ``limit`` characters, the marker saying how many were cut included."""
    if len(text) <= limit:
        return text
    kept = max(0, limit - len(f"… ({len(text):,} more characters)"))
    return f"{text[:kept]}… ({len(text) - kept:,} more characters)"


def render_error(error):
    """The protocol's error: the class name, the message, and the cell frames, innermost first."""
    kind = type(error).__name__
    if isinstance(error, SyntaxError):
        message = error.msg or "invalid syntax"
        if error.text:
            message = f"{message}: {error.text.strip()}"
        where = error.filename if isinstance(error.filename, str) and error.filename.startswith("<cell ") else None
        stack = [f'File "{where}", line {error.lineno}'] if where and error.lineno else []
        return {"type": kind, "message": _cap(message, MESSAGE_LIMIT_CHARS), "stack": stack}
    message = _safe_str(error)
    notes = getattr(error, "__notes__", None)
    if isinstance(notes, list):
        # Bounded: an exception may carry many notes (json adds one per level of a deep value).
        parts, size = [message], len(message)
        for note in notes:
            if size > MESSAGE_LIMIT_CHARS:
                parts.append(f"… ({len(notes) - len(parts) + 1:,} more notes)")
                break
            text = _safe_str(note)[: MESSAGE_LIMIT_CHARS + 1]
            parts.append(text)
            size += len(text) + 1
        message = "\n".join(parts)
    frames = []
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename.startswith("<cell "):
            frames.append(f'File "{code.co_filename}", line {tb.tb_lineno}, in {code.co_name}'[:FRAME_LIMIT_CHARS])
        tb = tb.tb_next
    frames.reverse()
    return {"type": kind[:NAME_LIMIT_CHARS], "message": _cap(message, MESSAGE_LIMIT_CHARS), "stack": frames[:MAX_FRAMES]}


# ------------------------------------------------------------------------------------------------
# Variables and reserved names


def _variable_names():
    names = []
    for name, value in list(_main.items()):
        if name in _contexts:
            names.append(name)
            continue
        if name.startswith("_") or name in _reserved or name in _tools:
            continue
        if name == ANSWER_NAME and value is _answer:
            continue
        if name in _baseline and _baseline[name] is value:
            continue
        names.append(name)
    names.sort()
    return names


def list_variables(names=None):
    """At most MAX_LISTED_VARIABLES (name, type) pairs, sorted by name, cut to the protocol's 256 characters."""
    if names is None:
        names = _variable_names()
    return [(name[:NAME_LIMIT_CHARS], short_type(_main[name])[:NAME_LIMIT_CHARS]) for name in names[:MAX_LISTED_VARIABLES]]


def _restore(note):
    """Puts back every reserved name and tool a cell overwrote or deleted; with ``note``, says so on stderr."""
    restored, restored_tools = [], []
    for group, target in ((_reserved, restored), (_tools, restored_tools)):
        for name, value in group.items():
            current = _main.get(name, _ABSENT)
            if value is _ABSENT:
                if current is _ABSENT:
                    continue
                del _main[name]
            elif current is value:
                continue
            else:
                _main[name] = value
            target.append(name)
    if sys.stdout is not _stdout or sys.stderr is not _stderr:
        sys.stdout, sys.stderr = _stdout, _stderr
    if not note:
        return

    def quoted(names):
        return ", ".join(f'"{name}"' for name in sorted(names))

    if restored:
        one = len(restored) == 1
        _stderr.write(
            f"Note: {quoted(restored)} {'is a name' if one else 'are names'} the REPL reserves; "
            f"{'it was' if one else 'they were'} restored after this cell. Use another name for your variable.\n"
        )
    if restored_tools:
        one = len(restored_tools) == 1
        _stderr.write(
            f"Note: {quoted(restored_tools)} {'is a tool' if one else 'are tools'} of the host; "
            f"{'it was' if one else 'they were'} restored after this cell. Use another name for your variable.\n"
        )


# ------------------------------------------------------------------------------------------------
# Entry points called by the worker


def install(host):
    """Binds the REPL's names in __main__ and routes sys.stdout/sys.stderr to the host's captures."""
    global _host, _stdout, _stderr, MAX_FINAL_CHARS, MAX_LISTED_VARIABLES
    _host = host
    MAX_FINAL_CHARS = int(host.maxFinalChars)
    MAX_LISTED_VARIABLES = int(host.maxListedVariables)
    _stdout = _HostStream("<stdout>", host.stdout)
    _stderr = _HostStream("<stderr>", host.stderr)
    sys.stdout, sys.stderr = _stdout, _stderr
    functions = {
        "llm_query": _single("llm_query"),
        "llm_query_batched": _batched("llm_query"),
        "rlm_query": _single("rlm_query"),
        "rlm_query_batched": _batched("rlm_query"),
        "FINAL": FINAL,
        "FINAL_VAR": FINAL_VAR,
        "SHOW_VARS": SHOW_VARS,
    }
    for name in RESERVED_NAMES:
        _reserved[name] = functions.get(name, _ABSENT)
    import time

    time.sleep = _sleep
    # The snapshot froze the interpreter's random state: every sandbox would draw the same numbers.
    import random

    random.seed()
    _main.update(PRE_IMPORTED)
    _baseline.update(_main)
    _baseline.pop("__builtins__", None)
    _restore(False)
    _bind_answer("")


def run_cell(cell_number, code):
    """Runs one cell; answers a JSON report: status, value, error, final, variables, interrupted."""
    global _final, _final_refused
    _final = None
    _final_refused = None
    filename = f"<cell {cell_number}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    _cell_sources.append(filename)
    while len(_cell_sources) > KEPT_CELL_SOURCES:
        linecache.cache.pop(_cell_sources.popleft(), None)

    value = None
    error = None
    interrupted = None
    try:
        tree = ast.parse(code, filename, "exec")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        body = compile(tree, filename, "exec")
        expression = compile(ast.Expression(last.value), filename, "eval") if last is not None else None
        exec(body, _main)
        if expression is not None:
            value = eval(expression, _main)
    except _CellDeadline:
        interrupted = "deadline"
    except KeyboardInterrupt as caught:
        interrupted = "interrupt"
        error = caught
    except BaseException as caught:  # SystemExit included: a cell cannot end the REPL
        error = caught

    # A late interrupt can land in the lines below; the main thread sends at most one per cell.
    for _attempt in range(3):
        try:
            answer_refused = _take_answer()
            # A refused answer the cell caught still makes the cell an error, unless another answer was taken.
            if _final is None and _final_refused is not None and error is None and not interrupted:
                error = _final_refused
            elif _final is None and answer_refused is not None and error is not answer_refused:
                # The cell failed on its own: its error stays the report's, and the refusal is said beside it.
                _stderr.write(f"{answer_refused}\n")
            report = {"status": "error" if error is not None or interrupted else "ok", "interrupted": interrupted}
            if error is not None:
                report["error"] = render_error(error)
            if value is not None and error is None and not interrupted:
                _main["_"] = value
                report["value"] = render_value(value)
            _restore(True)
            _flush_streams()
            report["final"] = _final
            report["variables"] = list_variables()
            _final = None
            _final_refused = None
            return json.dumps(report)
        except KeyboardInterrupt:
            continue
    return json.dumps({"status": "error", "interrupted": "interrupt", "final": None, "variables": []})


def _flush_streams():
    """Lands what the cell left in buffers in this cell's output: the interpreter's own streams
    (sys.__stdout__, which write to file descriptors 1 and 2) and undecoded bytes of ``buffer``."""
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
    for stream in (_stdout, _stderr):
        stream.buffer.finish()


def _answer(function):
    """Entry points answer JSON: ``{"ok": value}`` or ``{"error": [class name, message]}``."""

    def entry(*args):
        try:
            return json.dumps({"ok": function(*args)})
        except BaseException as error:
            return json.dumps({"error": [type(error).__name__, _safe_str(error)]})

    entry.__name__ = function.__name__
    return entry


@_answer
def load_context(variable, path, fmt):
    """Binds ``variable`` to the file at ``path`` (read once, straight into the interpreter's memory)."""
    if variable in _tools:
        raise ValueError(f'"{variable}" is the name of a tool; bind the context to another variable')
    if variable == ANSWER_NAME:
        raise ValueError(f'"{variable}" is the REPL\'s answer dict (answer["content"], answer["ready"]); bind the context to another variable')
    with open(path, "rb") as handle:
        data = handle.read()
    size = len(data)
    # Decoding replaces invalid UTF-8 as the JavaScript REPL does; the bytes are dropped at once.
    text = data.decode("utf-8", "replace")
    del data
    value = text
    if fmt == "json":
        value = json.loads(text[1:] if text.startswith("\ufeff") else text)
        del text
    _reserved[variable] = value
    _contexts.add(variable)
    _main[variable] = value
    return {"bytes": size, "valueType": short_type(value)}


@_answer
def define_tools(names_json):
    """Makes the given names the whole set of tools; all or nothing. Answers the names defined."""
    names = json.loads(names_json)
    problems = []
    seen = set()
    for name in names:
        problem = None
        if not name.isidentifier() or keyword.iskeyword(name):
            problem = "is not a Python identifier"
        elif name in seen:
            problem = "is defined twice"
        elif name in _contexts:
            problem = "is bound to a context"
        elif name == ANSWER_NAME:
            problem = "is the REPL's answer dict"
        elif hasattr(builtins, name) or name in _baseline:
            problem = "is a built-in of Python or a global of the REPL"
        if problem:
            problems.append(f"tool {json.dumps(name)}: the name {problem}")
        seen.add(name)
    if problems:
        raise ValueError("; ".join(problems) + "; choose other names")
    for name in list(_tools):
        if name in seen:
            continue
        tool = _tools.pop(name)
        if _main.get(name) is tool:
            del _main[name]
    for name in names:
        if name not in _tools:
            _tools[name] = _make_tool(name)
    _restore(False)
    return names
