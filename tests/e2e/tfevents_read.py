#!/usr/bin/python3
"""Independent reader of TensorBoard event files, for the tests.

Written from TensorBoard's own message definitions (tensorflow/tensorboard,
tensorboard/compat/proto/event.proto, summary.proto, tensor.proto, tensor_shape.proto, types.proto) and
the TFRecord framing, decoding the protobuf wire format by hand: it shares no code and no .proto with
the writer it checks. Every length and data CRC-32C is verified; any damage is an error.

Usage: tfevents_read.py [--purge] PATH...   (PATH: an event file, or a dir: its events.out.tfevents.*)
Prints one JSON object: files (path, records, file_version), scalars [wall_time, step, tag, value],
texts [wall_time, step, tag, text, plugin_name], session_logs [wall_time, step, status].
--purge applies TensorBoard's rule for SessionLog START at step S: earlier points at steps >= S vanish.
Exit 1 with one line naming the file, record and offset for a damaged file.
"""
import json
import os
import struct
import sys

# Field numbers, from the upstream .proto files named above.
EVENT_WALL_TIME, EVENT_STEP, EVENT_FILE_VERSION, EVENT_SUMMARY, EVENT_SESSION_LOG = 1, 2, 3, 5, 7
SUMMARY_VALUE = 1
VALUE_TAG, VALUE_SIMPLE_VALUE, VALUE_TENSOR, VALUE_METADATA = 1, 2, 8, 9
METADATA_PLUGIN_DATA, PLUGIN_DATA_PLUGIN_NAME = 1, 1
TENSOR_DTYPE, TENSOR_SHAPE, TENSOR_STRING_VAL = 1, 2, 8
SHAPE_DIM, DIM_SIZE = 2, 1
SESSION_LOG_STATUS = 1
SESSION_STATUS = {0: "STATUS_UNSPECIFIED", 1: "START", 2: "STOP", 3: "CHECKPOINT"}
DT_STRING = 7


class DamagedFile(Exception):
    pass


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path):
    """The data of every TFRecord in the file, each CRC checked."""
    with open(path, "rb") as f:
        blob = f.read()
    records, offset, n = [], 0, 0
    while offset < len(blob):
        where = f"{path}: record {n} at offset {offset}"
        if offset + 12 > len(blob):
            raise DamagedFile(f"{where}: truncated header ({len(blob) - offset} bytes)")
        header = blob[offset:offset + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", blob[offset + 8:offset + 12])
        if length_crc != masked_crc32c(header):
            raise DamagedFile(f"{where}: length CRC mismatch (stored {length_crc:#010x}, "
                              f"computed {masked_crc32c(header):#010x})")
        start, end = offset + 12, offset + 12 + length
        if end + 4 > len(blob):
            raise DamagedFile(f"{where}: truncated data (length {length}, {len(blob) - start} bytes left)")
        data = blob[start:end]
        (data_crc,) = struct.unpack("<I", blob[end:end + 4])
        if data_crc != masked_crc32c(data):
            raise DamagedFile(f"{where}: data CRC mismatch (stored {data_crc:#010x}, "
                              f"computed {masked_crc32c(data):#010x})")
        records.append(data)
        offset, n = end + 4, n + 1
    return records


def _varint(buf, pos):
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise DamagedFile("varint runs past the end of the message")
        b = buf[pos]
        result |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(buf):
    """(field number, wire type, value) of a serialized message: ints for varint, bytes otherwise."""
    pos, out = 0, []
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise DamagedFile(f"unsupported wire type {wire} for field {number}")
        if pos > len(buf):
            raise DamagedFile(f"field {number} runs past the end of the message")
        out.append((number, wire, value))
    return out


def _int64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _one(buf, number, default=None):
    values = [v for (n, _, v) in fields(buf) if n == number]
    return values[-1] if values else default


def decode_text(value_buf):
    """(plugin_name, text) of a Summary.Value holding a string tensor, else None."""
    tensor = _one(value_buf, VALUE_TENSOR)
    if tensor is None:
        return None
    metadata = _one(value_buf, VALUE_METADATA, b"")
    plugin_data = _one(metadata, METADATA_PLUGIN_DATA, b"")
    plugin_name = _one(plugin_data, PLUGIN_DATA_PLUGIN_NAME, b"").decode("utf-8")
    if _one(tensor, TENSOR_DTYPE, 0) != DT_STRING:
        raise DamagedFile("a text tensor that is not DT_STRING")
    dims = [_one(d, DIM_SIZE, 0) for (n, _, d) in fields(_one(tensor, TENSOR_SHAPE, b"")) if n == SHAPE_DIM]
    strings = [v.decode("utf-8") for (n, _, v) in fields(tensor) if n == TENSOR_STRING_VAL]
    if dims != [len(strings)]:
        raise DamagedFile(f"text tensor shape {dims} does not match its {len(strings)} strings")
    return plugin_name, "\n".join(strings)


def decode_event(buf, out, path):
    wall_time = struct.unpack("<d", _one(buf, EVENT_WALL_TIME, b"\0" * 8))[0]
    step = _int64(_one(buf, EVENT_STEP, 0))
    version = _one(buf, EVENT_FILE_VERSION)
    if version is not None:
        out["file_version"] = version.decode("utf-8")
    summary = _one(buf, EVENT_SUMMARY)
    if summary is not None:
        for (n, _, value) in fields(summary):
            if n != SUMMARY_VALUE:
                continue
            tag = _one(value, VALUE_TAG, b"").decode("utf-8")
            simple = _one(value, VALUE_SIMPLE_VALUE)
            if simple is not None:
                out["scalars"].append([wall_time, step, tag, struct.unpack("<f", simple)[0]])
            text = decode_text(value)
            if text is not None:
                out["texts"].append([wall_time, step, tag, text[1], text[0]])
    session_log = _one(buf, EVENT_SESSION_LOG)
    if session_log is not None:
        status = SESSION_STATUS.get(_one(session_log, SESSION_LOG_STATUS, 0), "UNKNOWN")
        out["session_logs"].append([wall_time, step, status])
        if status == "START" and out.get("purge"):
            out["scalars"] = [row for row in out["scalars"] if row[1] < step]
            out["texts"] = [row for row in out["texts"] if row[1] < step]


def event_files(path):
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.startswith("events.out.tfevents."))
        return [os.path.join(path, n) for n in names]
    return [path]


def read(paths, purge=False):
    out = {"files": [], "scalars": [], "texts": [], "session_logs": [], "purge": purge}
    for path in [f for p in paths for f in event_files(p)]:
        records = read_records(path)
        out["file_version"] = None
        for i, record in enumerate(records):
            try:
                decode_event(record, out, path)
            except (DamagedFile, UnicodeDecodeError, struct.error) as e:
                raise DamagedFile(f"{path}: record {i}: {e}")
        out["files"].append({"path": path, "records": len(records), "file_version": out.pop("file_version")})
    del out["purge"]
    return out


def main(argv):
    purge = "--purge" in argv
    paths = [a for a in argv if a != "--purge"]
    if not paths:
        print("usage: tfevents_read.py [--purge] PATH...", file=sys.stderr)
        return 2
    try:
        print(json.dumps(read(paths, purge)))
    except (DamagedFile, OSError) as e:
        print(f"tfevents_read: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
