"""condlock alone: N lock+unlock cycles on a server, for profilers.

    python bindings-python/bench/cycles.py URL N

URL is an S3 endpoint with a bucket named ``bench`` (keepalive_s3.py's URL,
after ``PUT /bench``; this script creates it). 50 warm-up cycles first; then
prints the CPU time and context switches per measured cycle. Run it under
``perf stat -e context-switches`` or ``perf record`` to see where the time goes.
"""

import resource
import sys
import time
import urllib.request

import condlock

url, n = sys.argv[1], int(sys.argv[2])
urllib.request.urlopen(urllib.request.Request(f"{url}/bench", method="PUT", data=b""), timeout=10).close()
lock = condlock.S3Lock(bucket="bench", key="cycles/condlock.tfstate", endpoint=url, region="us-east-1",
                       access_key_id="AKIDBENCH", secret_access_key="bench-secret")
for _ in range(50):
    lock.acquire(blocking=False).release()
r0, c0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
for _ in range(n):
    lock.acquire(blocking=False).release()
r1, cpu = resource.getrusage(resource.RUSAGE_SELF), time.process_time() - c0
switches = r1.ru_nvcsw + r1.ru_nivcsw - r0.ru_nvcsw - r0.ru_nivcsw
print(f"{n} cycles: {cpu / max(n, 1) * 1e6:.0f} µs CPU and {switches / max(n, 1):.2f} context switches per cycle")
