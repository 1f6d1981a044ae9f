"""The Dask program users start from (the article's example), as written there.

usage: python benchmarks/dask_mean.py [ROWS COLS]
"""

import sys

import dask.array as da
from dask.distributed import Client

if __name__ == "__main__":
    rows, cols = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (10000, 10000)
    client = Client()
    x = da.random.random((rows, cols), chunks=(1000, 1000))
    y = x.mean().compute()
    print("Mean of array:", y)
    client.close()
