"""mutmut 2 hook (copied to the scratch root by run.py): mutate only the chosen functions' lines,
and, with --sample K, one mutant in K (a stable hash of file, line text and index)."""
import hashlib
import json
import os

_SCOPE = json.loads(os.environ.get("WHYREC_MUTATION_SCOPE", "{}"))


def pre_mutation(context):
    lines = _SCOPE.get("lines")
    line_no = context.current_line_index + 1  # mutmut's index is 0-based
    if lines is not None and not any(a <= line_no <= b for a, b in lines):
        context.skip = True
        return
    k = int(_SCOPE.get("sample") or 1)
    if k > 1:
        mid = context.mutation_id
        key = f"{context.filename}|{mid.line.strip()}|{mid.index}".encode()
        if int(hashlib.sha256(key).hexdigest(), 16) % k:
            context.skip = True
