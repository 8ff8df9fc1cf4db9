"""topobench's nnU-Net trainers, for nnU-Net's lookup in ``nnUNet_extTrainer`` folders.

nnU-Net imports every module of such a folder and looks for the trainer's class name in it;
this one re-exports :mod:`topobench.nnunet.trainers`, including the names served on demand.
"""

from topobench.nnunet.trainers import *  # noqa: F403
from topobench.nnunet.trainers import __getattr__  # noqa: F401
