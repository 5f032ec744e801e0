"""`python -m resnet_repro.evaluate`, the public command; the code is use/evaluate.py."""

from resnet_repro.use.evaluate import main

if __name__ == "__main__":
    main()
