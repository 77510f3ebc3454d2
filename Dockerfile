# One image for the API, the worker, the simulators and migrations; the command
# picks the role (see docker-compose.yml).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY db ./db
COPY simulators ./simulators
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
ENV NODE_ENV=production
# Refuse the published development credentials unless a deployment says otherwise.
ENV WAYBILL_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER node
EXPOSE 3000
# The API's heap is capped (docs/production.md): with V8's default cap, a quarter of the
# machine's memory, garbage from a long CSV export piles up before it is collected.
CMD ["node", "--max-old-space-size=256", "dist/src/api/main.js"]
