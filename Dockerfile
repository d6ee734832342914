# Hugging Face Spaces (Docker SDK): the dashboard on port 7860 with its embedded worker.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    OMP_NUM_THREADS=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    VERL_STUDIO_HOME=/data/verl-studio

RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

COPY constraints.txt ./
# torch first and pinned: the CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY --chown=user . .
RUN pip install -c constraints.txt torch==2.13.0 . && mkdir -p /data && chown user /data

USER user
EXPOSE 7860
CMD ["verl-studio", "serve", "--host", "0.0.0.0", "--port", "7860"]
