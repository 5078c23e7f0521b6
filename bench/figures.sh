#!/bin/bash
# One run of every figure of bench/README.md's first section, one after another:
#   bash bench/figures.sh > figures.txt      (PYTHON=.venv/bin/python to choose one)
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
unset PYTHONDONTWRITEBYTECODE   # as a user's install: modules compiled once
echo "== date"; date -u; uptime
echo "== versions"; $PY -c "import sys, numpy, lark, threadpoolctl, sklearn; print(sys.version.split()[0], 'numpy', numpy.__version__, 'lark', lark.__version__, 'threadpoolctl', threadpoolctl.__version__, 'scikit-learn', sklearn.__version__)"
$PY -m mfc check specs/regressor.mf > /dev/null   # writes the .pyc files
echo "== step"; $PY bench/step_bench.py --repeats 15
echo "== start-up (10 runs each; min wall, min user+sys CPU)"
$PY - <<'PYEOF'
import resource, subprocess, sys, time
py = sys.executable
for args in (["-c", "pass"], ["-c", "import numpy"], ["-c", "import networkx"],
             ["-c", "import lark"], ["-m", "mfc", "check", "specs/regressor.mf"]):
    walls, cpus = [], []
    for _ in range(10):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([py, *args], stdout=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    print(f"python {' '.join(args)}: wall {min(walls):.3f} s, cpu {min(cpus):.3f} s")
PYEOF
echo "== in-process breakdown of mfc check specs/regressor.mf"
$PY - <<'PYEOF'
import time, io, contextlib
t0 = time.perf_counter(); import mfc.cli; t1 = time.perf_counter()
from mfc.lang import compiler; t2 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()): mfc.cli.main(["check", "specs/regressor.mf"])
t3 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()): mfc.cli.main(["check", "specs/regressor.mf"])
t4 = time.perf_counter()
print(f"import mfc.cli {t1-t0:.3f} s, the front end {t2-t1:.3f} s, first check (loads the parse tables) {t3-t2:.3f} s, second check {t4-t3:.3f} s")
PYEOF
echo "== check 100k"; $PY bench/check_bench.py --sizes 10000 100000 --repeats 1
echo "== memory (max RSS, 3 runs)"
S=$($PY -c "from mfc import bundled; print(bundled.data_folder() / 'digits.csv.gz')")
for i in 1 2 3; do
  /usr/bin/time -f "bare python+numpy holding digits: %M KB" $PY -c "import gzip, numpy as np; X = np.loadtxt(gzip.open('$S', 'rt'), delimiter=',')"
  /usr/bin/time -f "mfc run specs/digits.mf: %M KB" $PY -m mfc run specs/digits.mf > /dev/null
done 2>&1
$PY - <<'PYEOF'
import resource
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
import numpy; a = rss()
import numpy.random; b = rss()  # what any training needs: secrets, hashlib, libcrypto with it
import mfc.cli; from mfc.lang import compiler; c = rss()
import mfc; m = mfc.load("specs/digits.mf"); d = rss()
m.train(); e = rss()
print(f"max RSS: numpy {a:.1f} MB, + numpy.random {b-a:.1f}, + mfc's command and front end {c-b:.1f}, + compiling digits.mf {d-c:.1f}, + training {e-d:.1f} = {e:.1f} MB")
PYEOF
echo "== threads"; $PY bench/threads_bench.py --rounds 2
echo "== done"; date -u; uptime
