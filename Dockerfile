# Tickstream node image: the Rust core is built from source in the first stage (no prebuilt
# binaries), the runtime stage carries only production dependencies and the built output.
#
#   docker build -t tickstream:local .
#   docker run -p 3000:3000 -p 3030:3030 tickstream:local            # embedded default
#   docker compose up -d --build                                      # Kafka + NATS + 2 nodes

FROM node:24-bookworm AS build
RUN curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain 1.95.0
ENV PATH="/root/.cargo/bin:${PATH}"
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY . .
# Builds native/ (napi build, release) and compiles the TypeScript to dist/.
RUN npm run build

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/native/index.js /app/native/index.d.ts /app/native/*.node ./native/
# The default history store (HISTORY_URL=sqlite:.data/history.sqlite) lives here; mount a volume
# on /app/.data to keep it across containers.
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 3000 3030
CMD ["node", "dist/scripts/node.js"]
