"""Folder for nnU-Net's ``nnUNet_extTrainer`` variable (see :mod:`topobench.nnunet.lookup`)."""
