from dlcc.cli import main

# Guarded: `dlcc sweep --jobs J` starts worker processes with multiprocessing's spawn, which
# imports the parent's main module (this one) in each worker.
if __name__ == "__main__":
    raise SystemExit(main())
