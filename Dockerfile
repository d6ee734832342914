# Hugging Face Spaces (Docker SDK; README front matter: sdk docker, app_port 7860, hf_oauth).
# The dashboard on 0.0.0.0:7860 with its embedded worker, as uid 1000 (the Spaces docs' pattern).
# The install steps live in scripts/space/install.sh, which scripts/space/check_image.sh also runs
# in a clean virtual environment (Docker is not needed to test them).
FROM python:3.11-slim

RUN useradd -m -u 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/venv/bin:/home/user/.local/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    OMP_NUM_THREADS=1 \
    TOKENIZERS_PARALLELISM=false \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_OFFLINE=1 \
    HF_HOME=/home/user/.cache/huggingface \
    VERL_STUDIO_HOME=/home/user/data
WORKDIR $HOME/app
RUN python -m venv $HOME/venv

# torch first (its own layer, kept across source changes): the CPU wheel, ~2 GB image in all.
COPY --chown=user constraints.txt ./
COPY --chown=user scripts/space/ scripts/space/
RUN bash scripts/space/install.sh torch

COPY --chown=user . .
RUN bash scripts/space/install.sh app

EXPOSE 7860
CMD ["bash", "scripts/space/start.sh"]
