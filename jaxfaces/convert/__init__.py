"""Weight import from PyTorch files into jaxfaces parameters and checkpoints.

  python -m jaxfaces.convert cyclegan --pth latest_net_G_A.pth --pth_b latest_net_G_B.pth \
      --out runs/h2z_converted

PyTorch is needed only here (imported lazily, when a file is read); `pip install torch`.
"""
