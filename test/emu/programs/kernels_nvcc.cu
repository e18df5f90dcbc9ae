// nvcc compile check of kernels.cuh (sm_80 and sm_90a); no host code runs.
#include "kernels.cuh"
