"""tuspy (PyPI) against the node, for tests/tus_interop.rs: one half of an interrupted upload.

    tuspy_resume.py start  ENDPOINT FILE URL_DB CHUNK N   creates the upload, sends N chunks, stops
    tuspy_resume.py resume ENDPOINT FILE URL_DB CHUNK     a new uploader, in a new process, finds
                                                          the upload in the URL storage and ends it

Each run prints one JSON line: the upload URL, the offset it started from, the PATCHes it sent
(one `upload_chunk()` each) and the offset it left. The URL storage is tuspy's own
FileStorage, as its README shows for resumability; the chunks carry sha1 checksums.
"""

import json
import os
import socket
import sys

from tusclient import client
from tusclient.storage.filestorage import FileStorage

# tuspy calls requests without a timeout; urllib3 then uses this default for every socket.
socket.setdefaulttimeout(30)


def main():
    mode, endpoint, path, db, chunk = sys.argv[1:6]
    storage = FileStorage(db)
    uploader = client.TusClient(endpoint).uploader(
        path,
        chunk_size=int(chunk),
        metadata={"filename": os.path.basename(path)},
        store_url=True,
        url_storage=storage,
        upload_checksum=True,
    )
    started_at = uploader.offset
    if mode == "start":
        if uploader.url is not None:
            sys.exit("start: the URL storage already held an upload for this file")
        limit = int(sys.argv[6])
    elif mode == "resume":
        if uploader.url is None:
            sys.exit("resume: the URL storage held no upload for this file")
        limit = None
    else:
        sys.exit(f"unknown mode {mode}")
    patches = 0
    size = uploader.get_file_size()
    while uploader.offset < size and (limit is None or patches < limit):
        uploader.upload_chunk()  # creates the upload first when it has no URL yet
        patches += 1
    storage.close()
    print(json.dumps({
        "url": uploader.url,
        "started_at": started_at,
        "patches": patches,
        "offset": uploader.offset,
    }))


if __name__ == "__main__":
    main()
