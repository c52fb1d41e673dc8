# The rlm server image: `rlm serve`, the team service (REST and OpenAI-compatible APIs, teams and
# tokens, a durable queue), with what it needs to build the sandbox image on the Docker engine it is
# given and to run every request's sandboxes there.
#
# Do not build this file by hand with `docker build .` (the repository root is not its context, and
# .dockerignore leaves that context empty): `pnpm build:server-image` (deploy/build-server-image.mjs)
# assembles the context from the workspace's build and the pnpm store and builds it, offline, as
# rlm-server:local. The context:
#   rootfs/opt/rlm/               the rlm package as published (bin/, dist/: the CLI bundle, the viewer,
#                                 the sandbox image's Dockerfile and REPL bundle) with its production
#                                 dependencies from the pnpm store (`pnpm deploy --prod`; Pyodide
#                                 among them, which the sandbox image carries)
#   rootfs/usr/local/bin/rlm      a launcher: `docker exec <container> rlm serve tokens create …`
#   rootfs/usr/local/bin/node     the build host's Node binary (BASE_IMAGE=scratch only)
#   rootfs/lib…, rootfs/lib64/…   the shared libraries it loads, ELF interpreter included, at the
#                                 paths `ldd` names (scratch only); the server lists them again,
#                                 without `ldd`, when it builds the sandbox image from this Node
#   rootfs/etc/passwd, group,     root and the unprivileged user rlm (10001), no login shell;
#     nsswitch.conf               host names from /etc/hosts, then DNS (scratch only)
#   rootfs/tmp                    1777
#   owned/data/                   /data, owned by 10001 and group 0, mode 0770 (so that a container
#                                 run as root without capabilities can use it too): the working
#                                 directory, and the embedded database (rlm-data/) when no
#                                 DATABASE_URL names PostgreSQL. Copied as a directory entry, so
#                                 its mode survives (COPY of data/ to /data/ would make it 0755)
# There is no shell, package manager or coreutils in the scratch image: manage it with
# `docker exec <container> rlm …` (or `node`).
#
# With a real base image (`pnpm build:server-image --base-image node:24-bookworm-slim`, for hosts
# that can pull), rootfs/ leaves out Node, its libraries and /etc, and the image's
# /usr/local/bin/node runs the server.
#
# Runtime: the server reaches the engine through DOCKER_HOST or /var/run/docker.sock (mounted; see
# docker-compose.yml for what that means), and the sandboxes' control sockets and context files live
# under $XDG_RUNTIME_DIR/rlm-<uid>/, which must be a host directory mounted at the same path (the
# engine bind-mounts them into the sandboxes by their host path).
ARG BASE_IMAGE=scratch
FROM ${BASE_IMAGE}
COPY rootfs/ /
COPY --chown=10001:0 owned/ /
# RLM_SERVE_HOST: in a container the server listens on every interface of the container's own
# network namespace; which of them the host publishes is the `ports:` of docker-compose.yml.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RLM_SERVE_HOST=0.0.0.0 \
    RLM_DATA_DIR=/data/rlm-data
USER 10001:10001
WORKDIR /data
EXPOSE 8080
# `serve` is the command, not part of the entrypoint, so the same image runs the management
# commands: `docker run … rlm-server:local serve teams create NAME`.
ENTRYPOINT ["/usr/local/bin/node", "/opt/rlm/bin/rlm.js"]
CMD ["serve"]
