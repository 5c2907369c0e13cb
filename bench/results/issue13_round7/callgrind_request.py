"""N requests through the in-process demo echo app (none or rust3) after 200 of warm-up, for
`valgrind --tool=callgrind` (issue 13 round 7): instructions per request = (total at N=2000 -
total at N=0) / 2000. Usage: valgrind --tool=callgrind --callgrind-out-file=OUT
.venv/bin/python bench/results/issue13_round7/callgrind_request.py none|rust3 N"""
import sys, pathlib, tempfile
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
from bench import stage_breakdown as sb
env = sb.falcon.testing.create_environ(path="/bench/items", query_string="limit=10", headers={"User-Agent": "wrk", "Connection": "close"})
pipe = sys.argv[1]; n = int(sys.argv[2])
with tempfile.TemporaryDirectory() as folder:
    app = sb._app(pathlib.Path(folder), "echo", pipe)
    run = sb._wsgi(app, env)
    for _ in range(200): run()
    for _ in range(n): run()
