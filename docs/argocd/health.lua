-- Argo CD health check for data.oms-spider.io/OmsRedis (oms-data-operator); see docs/argocd.md.
-- Healthy only when the operator has observed the current generation and Ready is True for it.
-- Uses Lua's base library only: argocd-cm checks have no string or math library.
local hs = {}
local meta = obj.metadata or {}
local status = obj.status or {}
local generation = meta.generation
local annotations = meta.annotations or {}

local function condition(kind)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

local ready = condition("Ready")
-- The operator's word on the current generation: what it is doing, or why it failed.
local readyMessage = nil
if ready ~= nil and ready.message ~= nil and ready.message ~= ""
    and (ready.observedGeneration == nil or ready.observedGeneration == generation) then
  readyMessage = ready.message
end
local waiting = "waiting for the operator to observe generation " .. tostring(generation)

if annotations["data.oms-spider.io/paused"] == "true" then
  hs.status = "Suspended"
  hs.message = "paused (annotation data.oms-spider.io/paused=true): the operator leaves it alone"
  return hs
end

if meta.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "being deleted"
  if readyMessage ~= nil then
    hs.message = "being deleted: " .. readyMessage
  end
  return hs
end

-- Before the operator has seen this generation, every condition describes an older spec.
if generation == nil or status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = waiting
  return hs
end

if isTrue(condition("Stalled")) then
  hs.status = "Degraded"
  hs.message = readyMessage or condition("Stalled").message or "stalled"
  return hs
end

if isTrue(ready) and ready.observedGeneration == generation and not isTrue(condition("Reconciling")) then
  hs.status = "Healthy"
  hs.message = readyMessage or "ready"
  return hs
end

hs.status = "Progressing"
hs.message = readyMessage or waiting
return hs
