"""eoslib: the machinery behind the book *Gradient descent at the edge of stability*.

One module, one job (see the README's architecture section):

- :mod:`eoslib.settings`  the one book-wide settings function chapters call
- :mod:`eoslib.data`      datasets (offline digits, CIFAR-10 opt-in, synthetic, text)
- :mod:`eoslib.models`    the networks of the paper, built deterministically from a seed
- :mod:`eoslib.losses`    MSE in the paper's convention, cross-entropy, accuracy
- :mod:`eoslib.optim`     GD, momentum, SGD, Adam and their stability thresholds
- :mod:`eoslib.hessian`   Hessian-vector products, Lanczos, sharpness (a subpackage)
- :mod:`eoslib.quadratic` gradient descent on quadratics, in closed form
- :mod:`eoslib.train`     tracked training runs
- :mod:`eoslib.analysis`  edge-of-stability measurements of a run (crossing, median ratio, ...)
- :mod:`eoslib.flow`      gradient-flow paths and time-aligned distances (chapter 3)
- :mod:`eoslib.scalar_net` the two-layer scalar network, in closed form (chapter 8)
- :mod:`eoslib.cache`     atomic, resumable result cache
- :mod:`eoslib.plot`      figures (return a Figure, never call show)
- :mod:`eoslib.widgets`   optional ipywidgets explorers
- :mod:`eoslib.cli`       ``python -m eoslib``

Submodules are imported explicitly (``from eoslib import train``), so importing
the package itself is cheap and has no side effects.

Reference: J. Cohen, S. Kaur, Y. Li, J. Z. Kolter, A. Talwalkar. *Gradient Descent
on Neural Networks Typically Occurs at the Edge of Stability*. ICLR 2021.
"""

__version__ = "0.1.0"
