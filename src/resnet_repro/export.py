"""`python -m resnet_repro.export`, the public command; the code is use/export.py."""

from resnet_repro.use.export import main

if __name__ == "__main__":
    main()
