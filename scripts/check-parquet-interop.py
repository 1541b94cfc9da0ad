"""pyarrow reads what `tweetsim embed --out X.parquet` wrote, and tweetsim reads and indexes
a table pyarrow wrote with the types other tools use, answering as an exact search in
Python does. Usage: check-parquet-interop.py TWEETSIM WORKDIR (WORKDIR/b.parquet: the
bundled corpus embedded with --chunk 256)."""
import datetime
import json
import math
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq

tweetsim, work = sys.argv[1], sys.argv[2]
passed, failed = 0, 0


def check(name, ok, detail=""):
    global passed, failed
    passed, failed = passed + bool(ok), failed + (not ok)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))


def run(*args):
    r = subprocess.run([tweetsim, *args], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"FAIL tweetsim {' '.join(args)}: {r.stderr}")
    return r.stdout


# 1. pyarrow reads tweetsim's file.
f = pq.ParquetFile(f"{work}/b.parquet")
schema = f.schema_arrow
want = {"id": pa.string(), "text": pa.string(), "created_at": pa.date32(), "likes": pa.int64(),
        "retweets": pa.int64(), "replies": pa.int64(), "is_reply": pa.bool_(), "url": pa.string()}
got = {n: schema.field(n).type for n in want if n in schema.names}
check("the tweet columns have their types", got == want, got)
emb = schema.field("embedding").type
check("embedding is fixed_size_list<float32>[384]",
      pa.types.is_fixed_size_list(emb) and emb.list_size == 384 and emb.value_type == pa.float32(), emb)
check("one row group per chunk of 256", f.metadata.num_row_groups == 3, f.metadata.num_row_groups)
meta = json.loads(f.metadata.metadata[b"tweetsim"])
check("the footer names the model and the rows",
      meta["model"]["id"] == "sentence-transformers/all-MiniLM-L6-v2" and meta["rows"] == 680, meta)
t = f.read()
rows = t.to_pylist()
check("680 rows", len(rows) == 680, len(rows))
norms = [math.sqrt(sum(x * x for x in r["embedding"])) for r in rows]
check("every vector is a unit vector", all(abs(n - 1) < 1e-5 for n in norms), (min(norms), max(norms)))
dates = [r["created_at"] for r in rows]
check("dates are 2022's", all(datetime.date(2022, 1, 1) <= d <= datetime.date(2022, 12, 31) for d in dates))
check("ids are status ids", all(r["id"].isdigit() and len(r["id"]) >= 18 for r in rows))

# 2. A table pyarrow writes with other types: int64 ids, timestamps, nullable int32 counts,
#    plain list vectors. The first 120 rows: repeats included, as in the source.
part = rows[:120]
table = pa.table({
    "id": pa.array([int(r["id"]) for r in part], pa.int64()),
    "text": pa.array([r["text"] for r in part]),
    "created_at": pa.array([datetime.datetime.combine(r["created_at"], datetime.time(12), datetime.timezone.utc)
                            for r in part], pa.timestamp("ms", tz="UTC")),
    "likes": pa.array([None if i == 3 else min(r["likes"], 2**31 - 1) for i, r in enumerate(part)], pa.int32()),
    "is_reply": pa.array([r["is_reply"] for r in part]),
    "embedding": pa.array([r["embedding"] for r in part], pa.list_(pa.float32())),
    "source": pa.array(["pyarrow"] * len(part)),
})
pq.write_table(table, f"{work}/pa.parquet")
summary = json.loads(run("corpus", "--corpus", f"{work}/pa.parquet", "--json"))
first = {}
for r in part:
    first.setdefault(r["id"], r)
check("tweetsim reads pyarrow's table: entries, unique tweets, dates",
      (summary["entries"], summary["unique"], summary["first_date"]) == (120, len(first), str(part[0]["created_at"])),
      summary)
store = f"{work}/pa-store"
run("index", "-q", "--corpus", f"{work}/pa.parquet", "--embeddings", f"{work}/pa.parquet", "--store", store)

# 3. Its store answers as an exact cosine search over those vectors does.
ids = list(first)
vec = {i: first[i]["embedding"] for i in ids}
ok_all, detail = True, ""
for q in ids[::15]:
    cos = lambda i: sum(a * b for a, b in zip(vec[q], vec[i]))
    exact = sorted((i for i in ids if i != q), key=lambda i: -cos(i))[:5]
    out = run("similar", "--tweet", q, "--store", store, "--mode", "dense", "--exact", "--no-collapse", "-k", "5", "--json")
    hits = [json.loads(line)["id"] for line in out.splitlines()]
    # The same ranking; where two tweets tie to float rounding, either order.
    same = len(hits) == 5 and all(abs(cos(h) - cos(e)) < 1e-5 for h, e in zip(hits, exact))
    if not same:
        ok_all, detail = False, f"{q}: {hits} vs {exact}"
check("its store's dense top 5 equal an exact search in Python", ok_all, detail)

print(f"interop: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
