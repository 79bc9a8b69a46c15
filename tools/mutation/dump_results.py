"""Print mutmut's cache as JSON lines: status, file, line number, original and mutated line.

Run by run.py with the mutmut virtualenv's Python, in the scratch copy (where .mutmut-cache is)."""
import json
import sys

from mutmut import Context, mutate
from mutmut.cache import Mutant, db_session, filename_and_mutation_id_from_pk, init_db

STATUS = {"ok_killed": "killed", "bad_timeout": "timeout", "ok_suspicious": "suspicious",
          "bad_survived": "survived", "skipped": "skipped", "untested": "untested"}

@init_db
def dump() -> None:
    with db_session:
        for m in Mutant.select():
            status = STATUS.get(m.status, m.status)
            if status == "skipped":
                continue
            filename, mid = filename_and_mutation_id_from_pk(m.id)
            source = open(filename).read()
            mutated, n = mutate(Context(source=source, filename=filename, mutation_id=mid))
            old = source.split("\n")
            new = mutated.split("\n")
            i = mid.line_number
            after = new[i] if n and len(new) == len(old) else "\n".join(new[i:i + 1 + len(new) - len(old)])
            print(json.dumps({"id": m.id, "status": status, "file": filename, "line": i + 1,
                              "before": old[i].strip(), "after": after.strip()}))


dump()
sys.stdout.flush()
