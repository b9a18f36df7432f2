"""Only for runs against tools/fake_cifar10/make.py's folder: skip torchvision's MD5 check of CIFAR-10 files."""

try:
    import torchvision.datasets.cifar as _cifar

    _cifar.check_integrity = lambda path, md5=None: __import__("os").path.isfile(path)
except ImportError:  # no torchvision: nothing to patch
    pass
