"""Safe output: the rules every lqer command follows when it writes, in one place.

1. An output is never one of the command's inputs, never holds one, never lies inside one,
   and never lies inside a class folder (`positive/`, `negative/`), which every reader walks.
2. A folder output belongs to one command (`KINDS`): it is new, empty, or marked `.lqer-KIND`
   by that command, which may then write there again. Readers skip marked folders, so no
   output is read back as data.
3. A file output replaces an existing file only if lqer wrote it there and nobody changed it
   since: the folder's `.lqer-files` lists each such file with its hash.
4. A command holds an exclusive lock on the folder it writes (`locked`), so two commands never
   mix their files in one folder or delete each other's temporaries.
5. Files appear complete or not at all: each is written to a temporary beside it and renamed
   into place, and the temporaries a killed command left are removed when lqer next claims
   the folder.
"""

from lqer.io.files import (
    TEMPORARY,
    atomic_folder,
    atomic_path,
    check_output_folder,
    remove_stale_temporaries,
    remove_stale_work,
    umask,
    work_folder,
    write_csv,
    write_text,
)
from lqer.io.locks import locked
from lqer.io.rules import (
    KINDS,
    REGISTRY,
    check_apart,
    check_output_file,
    check_own_folder,
    claim_folder,
    class_folder_above,
    files_under,
    marker,
    output_file,
    owned_folder,
    owner,
    record,
    written_by_lqer,
)

__all__ = [
    "KINDS", "REGISTRY", "TEMPORARY", "atomic_folder", "atomic_path", "check_apart",
    "check_output_file", "check_output_folder", "check_own_folder", "claim_folder",
    "class_folder_above", "files_under", "locked", "marker", "output_file", "owned_folder",
    "owner", "record", "remove_stale_temporaries", "remove_stale_work", "umask", "work_folder",
    "written_by_lqer", "write_csv", "write_text",
]  # fmt: skip
