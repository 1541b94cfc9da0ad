#!/usr/bin/env bash
# Builds `tweetsim` with the `cuda` feature for compute capability 9.0 (H100/H200) on a machine
# with no GPU and no system CUDA:
#   1. installs the CUDA 13.0 compiler, headers and libraries from NVIDIA's PyPI wheels into
#      target/cuda-toolkit (pinned to 13.0: the GPU machines' driver is CUDA 13.0, and cudarc
#      refuses an nvcc newer than it knows);
#   2. supplies what the wheels lack for linking: unversioned libX.so links, and a stub
#      libcuda.so.1 (the real one comes with the GPU driver) defining every driver-API symbol
#      cudarc declares, each returning CUDA_ERROR_NO_DEVICE (100), so that with the stub on the
#      library path the binary runs on the CPU and a request for the GPU is a clean error;
#   3. builds into target/cuda (the CPU build in target/release is left alone).
# The binary needs libcuda.so.1 (driver) and the wheels' libcudart/libcublas/libcurand/libnvrtc
# at run time: on the GPU machine set LD_LIBRARY_PATH to a folder holding them.
# Usage: scripts/build-cuda.sh   (env: TWEETSIM_CUDA_DIR to put the toolkit elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
toolkit=${TWEETSIM_CUDA_DIR:-$PWD/target/cuda-toolkit}
python=${TWEETSIM_PYTHON:-python3}

if [ ! -x "$toolkit/nvidia/cu13/bin/nvcc" ]; then
  echo "installing CUDA 13.0 wheels into $toolkit ..."
  "$python" -m pip install --quiet --disable-pip-version-check --no-deps --target "$toolkit" \
    nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 \
    nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
fi
home=$toolkit/nvidia/cu13
"$home/bin/nvcc" --version | tail -2

# Unversioned names for the linker: libcublas.so -> libcublas.so.13, ...
for lib in "$home"/lib/lib*.so.*; do
  [ -e "$lib" ] || continue
  plain=${lib%%.so.*}.so
  [ -e "$plain" ] || ln -s "$(basename "$lib")" "$plain"
done

# A stand-in for the driver library: every driver-API function answers "no device".
cargo fetch --quiet
sys=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs | tail -1)
mkdir -p "$home/lib/stubs"
grep -oE '\bfn cu[A-Za-z0-9_]+\(' "$sys" | sed 's/^fn //; s/($//' | sort -u |
  sed 's/.*/int &(void) { return 100; }/' > "$home/lib/stubs/libcuda_stub.c"
echo "libcuda stub: $(wc -l < "$home/lib/stubs/libcuda_stub.c") driver functions"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$home/lib/stubs/libcuda.so" "$home/lib/stubs/libcuda_stub.c"
ln -sf libcuda.so "$home/lib/stubs/libcuda.so.1"

export PATH="$home/bin:$PATH" CUDA_HOME="$home" CUDA_PATH="$home" CUDA_ROOT="$home"
export CUDA_COMPUTE_CAP=90
export LIBRARY_PATH="$home/lib:$home/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
cargo build --release --features cuda --target-dir target/cuda
ls -la target/cuda/release/tweetsim
echo "built target/cuda/release/tweetsim (sm_90); run it on a GPU machine with LD_LIBRARY_PATH at its cu13 libraries, or here (CPU only) with LD_LIBRARY_PATH=$home/lib:$home/lib/stubs"
